import NIOHTTP1

/// The HTTP/1.1 side of a SPDY upgrade as Kubernetes performs it (protocols.md §2): the header names,
/// the subprotocol negotiation, and the answers to refused requests.
public enum SPDYHandshake {
    /// The `Upgrade` token. The frames inside are SPDY version 3 (§1).
    public static let upgradeToken = "SPDY/3.1"
    /// Offered (several values, client order) and chosen subprotocol.
    public static let protocolVersionHeader = "X-Stream-Protocol-Version"
    /// The server's supported set, in a 403 answer to an offer with no overlap.
    public static let acceptedProtocolVersionsHeader = "X-Accepted-Stream-Protocol-Versions"

    /// Whether `headers` ask for a SPDY upgrade: `Connection` contains "upgrade" and `Upgrade` contains
    /// "spdy/3.1", both case-insensitive substring tests, as the Go server checks them.
    public static func isUpgradeRequest(_ headers: HTTPHeaders) -> Bool {
        headers["Connection"].contains { $0.lowercased().contains("upgrade") }
            && headers["Upgrade"].contains { $0.lowercased().contains("spdy/3.1") }
    }

    /// The offered subprotocols in client order; values may come as several lines or comma-separated.
    public static func offeredProtocolVersions(_ headers: HTTPHeaders) -> [String] {
        headers[protocolVersionHeader].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: " \t")
        }.filter { !$0.isEmpty }
    }

    /// Chooses the first protocol offered by the client that the server supports (`httpstream.Handshake`).
    ///
    /// - Throws: ``SPDYError/Kind/notAnUpgradeRequest``, ``SPDYError/Kind/missingProtocolVersion`` or
    ///   ``SPDYError/Kind/noCommonProtocolVersion``; answer them with ``rejection(for:supported:)``.
    public static func negotiate(_ headers: HTTPHeaders, supported: [String]) throws(SPDYError) -> String {
        guard isUpgradeRequest(headers) else {
            throw SPDYError(.notAnUpgradeRequest, "the request lacks Connection: upgrade and Upgrade: SPDY/3.1")
        }
        let offered = offeredProtocolVersions(headers)
        guard !offered.isEmpty else {
            throw SPDYError(.missingProtocolVersion, "no \(protocolVersionHeader) header")
        }
        guard let chosen = offered.first(where: supported.contains) else {
            throw SPDYError(
                .noCommonProtocolVersion,
                "none of \(offered.joined(separator: ", ")) is supported; supported: \(supported.joined(separator: ", "))"
            )
        }
        return chosen
    }

    /// The status and headers that refuse an upgrade as the Go server does: 403 with the supported set for
    /// no common protocol, 400 otherwise.
    public static func rejection(for error: SPDYError, supported: [String]) -> (HTTPResponseStatus, HTTPHeaders) {
        guard error.kind == .noCommonProtocolVersion else { return (.badRequest, HTTPHeaders()) }
        return (.forbidden, HTTPHeaders([(acceptedProtocolVersionsHeader, supported.joined(separator: ", "))]))
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
