import ArgumentParser
import Foundation
import KubeProxy
import NIOHTTP1
import Policy

/// The options `approve` and `deny` share. Both act with the caller's own kubeconfig identity,
/// through the proxy or straight to the apiserver: the webhook admits the decision only from a
/// listed approver who is not the requester.
struct DecisionOptions: ParsableArguments {
    @Argument(help: "The AccessRequest, as NAME or NAMESPACE/NAME.")
    var request: String

    @Option(name: .shortAndLong, help: "Namespace of the AccessRequest.")
    var namespace = "portcullis-system"

    @Option(help: "The kubeconfig to act with (default: $KUBECONFIG, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use.")
    var context: String?

    @Option(help: "Why; recorded on the AccessRequest.")
    var reason: String?

    func decide(_ state: AccessRequest.State) async throws {
        let (namespace, name) =
            request.contains("/")
            ? (String(request.split(separator: "/")[0]), String(request.split(separator: "/")[1]))
            : (self.namespace, request)
        let path = ProcessInfo.processInfo.environment["KUBECONFIG"]?.split(separator: ":").first.map(String.init)
        let file = kubeconfig ?? path ?? NSHomeDirectory() + "/.kube/config"
        let client = try KubernetesClient(configuration: try .kubeconfig(file, context: context))
        let resource = "/apis/\(PolicyAPI.group)/\(PolicyAPI.version)/namespaces/\(namespace)/accessrequests/\(name)"
        let current: [String: Any]
        do {
            current = try await client.json(.GET, resource)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let spec = current["spec"] as? [String: Any] ?? [:]
        let summary = (spec["request"] as? [String: Any])?["text"] as? String ?? ""
        let requester = (spec["requester"] as? [String: Any])?["user"] as? String ?? "?"
        // decidedBy and the expiry are stamped by the webhook from who you are; sending them lets a
        // cluster without the mutating webhook still check them.
        var status: [String: Any] = ["state": state.rawValue, "decidedAt": AccessRequest.formatTimestamp(Date())]
        if state == .approved, let grant = (spec["grantFor"] as? String).flatMap(AccessRequest.grantDuration) {
            status["expiresAt"] = AccessRequest.formatTimestamp(Date().addingTimeInterval(grant))
        }
        if let reason { status["reason"] = reason }
        do {
            _ = try await client.json(
                .PATCH, resource + "/status", ["status": status], contentType: "application/merge-patch+json")
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        print(
            "\(state == .approved ? "approved" : "denied") \(namespace)/\(name): \(summary) (requested by \(requester))"
        )
    }
}

struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a held request or command (also as `kubectl portcullis approve`).",
        discussion: "Link the binary as kubectl-portcullis on your PATH to use it as a kubectl plugin.")

    @OptionGroup var options: DecisionOptions

    func run() async throws { try await options.decide(.approved) }
}

struct DenyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny", abstract: "Deny a held request or command (also as `kubectl portcullis deny`).")

    @OptionGroup var options: DecisionOptions

    func run() async throws { try await options.decide(.denied) }
}
