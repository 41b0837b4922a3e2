import Foundation
import Policy

/// The AccessRequest API (`/apis/portcullis.dev/v1alpha1/[namespaces/NS/]accessrequests[/NAME[/status]]`)
/// served by the proxy from a ``LocalApprovals`` store, for authenticated callers whose request
/// the policies allowed: what `portcullis approve|deny` and `kubectl get --raw` need.
///
/// | verb | path | |
/// |---|---|---|
/// | get | `…/accessrequests/NAME[/status]` | the object |
/// | list | `…/accessrequests` (one namespace or all) | `AccessRequestList`; `labelSelector` with `k=v` terms |
/// | patch | `…/accessrequests/NAME/status` | JSON merge patch setting `status.state` to Approved or Denied |
/// | update | `…/accessrequests/NAME/status` | the whole object, same rule |
///
/// Anything else (create, delete, watch, writes to the main resource) is refused: requests are
/// filed by the proxy itself, and a decision is the only change a client can make. Of the status
/// a client sends only `state` and `reason` count; `decidedBy`, `decidedAt` and `expiresAt` are
/// stamped from the authenticated caller, the clock and the request's `grantFor`.
struct LocalApprovalsAPI: Sendable {
    let store: LocalApprovals

    static func serves(_ info: RequestInfo) -> Bool {
        info.isResourceRequest && info.apiGroup == PolicyAPI.group && info.resource == "accessrequests"
    }

    /// Answers one API request with the JSON body of a 200 response.
    func serve(
        _ info: RequestInfo, query: [String: [String]], contentType: String?, body: Data,
        caller: RequestAttributes.UserInfo, now: Date
    ) async throws(ApprovalsError) -> Data {
        guard info.apiVersion == PolicyAPI.version, ["", "status"].contains(info.subresource) else {
            throw ApprovalsError(.notFound, "the server could not find the requested resource")
        }
        let inNamespace = info.namespace == store.namespace
        switch info.verb {
        case "get":
            guard inNamespace else { throw LocalApprovals.notFound(info.name) }
            return try Self.encode(await store.get(info.name, now: now))
        case "list":
            let selector = try LabelSelector(query["labelSelector"]?.first ?? "")
            let (items, resourceVersion) = await store.list(now: now)
            let selected = items.filter {
                (info.namespace.isEmpty || inNamespace) && selector.matches($0.metadata.labels ?? [:])
            }
            return try Self.encode(
                AccessRequestList(metadata: .init(resourceVersion: resourceVersion), items: selected))
        case "patch", "update":
            guard info.subresource == "status" else {
                throw ApprovalsError(
                    .unsupported,
                    "AccessRequests in the proxy's local store change only through their status subresource "
                        + "(portcullis approve|deny)")
            }
            guard inNamespace else { throw LocalApprovals.notFound(info.name) }
            return try await decide(
                info.name, verb: info.verb, contentType: contentType, body: body, caller: caller, now: now)
        default:
            throw ApprovalsError(
                .unsupported,
                "\(info.verb) is not supported on AccessRequests in the proxy's local store; "
                    + "they are filed by the proxy and decided with portcullis approve|deny")
        }
    }

    private func decide(
        _ name: String, verb: String, contentType: String?, body: Data, caller: RequestAttributes.UserInfo,
        now: Date
    ) async throws(ApprovalsError) -> Data {
        let current = try await store.get(name, now: now)
        let media = (contentType ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard let input = try? JSONSerialization.jsonObject(with: body), input is [String: Any] else {
            throw ApprovalsError(.badRequest, "the body must be a JSON object")
        }
        let changed: Any
        switch (verb, media) {
        case ("patch", "application/merge-patch+json"):
            changed = JSONMergePatch.apply(input, to: try Self.jsonObject(current))
        case ("update", "application/json"), ("update", nil):
            changed = input
        default:
            throw ApprovalsError(
                .unsupportedMediaType,
                "the local AccessRequest store accepts \(verb == "patch" ? "application/merge-patch+json" : "application/json") for \(verb), not \(media ?? "no content type")"
            )
        }
        guard let data = try? JSONSerialization.data(withJSONObject: changed),
            let updated = try? JSONDecoder().decode(AccessRequest.self, from: data)
        else { throw ApprovalsError(.invalid, "the result does not have the AccessRequest shape") }
        guard updated.metadata.name == name, updated.spec == current.spec else {
            throw ApprovalsError(.invalid, "the name and spec of an AccessRequest cannot change once created")
        }
        guard updated.state != current.state else {
            if current.state == .pending {
                throw ApprovalsError(.invalid, "status.state must be set to Approved or Denied")
            }
            throw ApprovalsError(.conflict, "AccessRequest \(name) was already \(current.state.rawValue)")
        }
        let decided = try await store.decide(
            name, updated.state, by: caller.name, groups: caller.groups, reason: updated.status?.reason,
            resourceVersion: updated.metadata.resourceVersion ?? current.metadata.resourceVersion, now: now)
        return try Self.encode(decided)
    }

    struct AccessRequestList: Encodable {
        struct Metadata: Encodable { var resourceVersion: String }
        var apiVersion = PolicyAPI.apiVersion
        var kind = "AccessRequestList"
        var metadata: Metadata
        var items: [AccessRequest]
    }

    /// Equality terms (`k=v`, `k==v`, comma-separated): what anyone filters AccessRequests by.
    struct LabelSelector {
        var terms: [(key: String, value: String)] = []

        init(_ text: String) throws(ApprovalsError) {
            for term in text.split(separator: ",") {
                let parts = term.replacingOccurrences(of: "==", with: "=").split(
                    separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].contains("!") else {
                    throw ApprovalsError(
                        .badRequest, "only equality label selectors (key=value) are supported, not \"\(term)\"")
                }
                terms.append(
                    (
                        String(parts[0]).trimmingCharacters(in: .whitespaces),
                        String(parts[1]).trimmingCharacters(in: .whitespaces)
                    ))
            }
        }

        func matches(_ labels: [String: String]) -> Bool {
            terms.allSatisfy { labels[$0.key] == $0.value }
        }
    }

    private static func encode(_ value: some Encodable) throws(ApprovalsError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(value)
        } catch {
            throw ApprovalsError(.badRequest, "cannot encode the response: \(error)")
        }
    }

    private static func jsonObject(_ request: AccessRequest) throws(ApprovalsError) -> Any {
        guard let object = try? JSONSerialization.jsonObject(with: encode(request)) else {
            throw ApprovalsError(.badRequest, "cannot encode the AccessRequest")
        }
        return object
    }
}
