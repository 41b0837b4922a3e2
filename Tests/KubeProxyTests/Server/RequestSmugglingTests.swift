import Foundation
import Testing

@testable import KubeProxy

/// Request smuggling: bytes that two HTTP parsers could frame differently. The proxy parses each
/// request, decides it, and writes a fresh request upstream (its own Content-Length, no
/// Transfer-Encoding), so the only way to smuggle is to make the proxy's parser skip a request;
/// these tests send the classic ambiguities as raw bytes and check that a request the policy
/// denies never reaches the upstream.
@Suite("Request smuggling through the proxy", .serialized)
struct RequestSmugglingTests {
    static let policies = """
        apiVersion: portcullis.dev/v1alpha1
        kind: AccessPolicy
        metadata: {name: smuggling}
        spec:
          match: {namespaces: [prod], resources: [secrets]}
          rules:
          - {name: no-prod-secrets, action: Deny, message: prod secrets are off limits}
        """

    /// The request the policy denies, hidden in the bytes of an allowed one.
    static let hidden =
        "GET /api/v1/namespaces/prod/secrets HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer alice-token\r\n\r\n"

    /// An allowed request's head up to (and without) its framing headers.
    static let allowed =
        "POST /api/v1/namespaces/dev/configmaps HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer alice-token\r\n"
        + "Content-Type: application/json\r\n"

    enum Outcome: Sendable, CustomStringConvertible {
        /// The parser refuses the framing: 400, connection closed, nothing forwarded.
        case refused
        /// Framed one unambiguous way: these responses, in order; the hidden request, if parsed
        /// as a request at all, was decided (403) and never forwarded.
        case framed([Int])

        var description: String {
            switch self {
            case .refused: "refused"
            case .framed(let codes): "framed \(codes)"
            }
        }
    }

    struct Attempt: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: String
        var outcome: Outcome
        var testDescription: String { name }
    }

    static let attempts: [Attempt] = [
        Attempt(
            name: "Content-Length and Transfer-Encoding together (CL.TE)",
            bytes: allowed + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "Transfer-Encoding and Content-Length together (TE.CL)",
            bytes: allowed + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                + "\(String(hidden.utf8.count + 2, radix: 16))\r\nxx\(hidden)\r\n0\r\n\r\n",
            outcome: .refused),
        Attempt(
            name: "two Content-Length headers with different values",
            bytes: allowed + "Content-Length: 0\r\nContent-Length: \(hidden.utf8.count)\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "a Content-Length list",
            bytes: allowed + "Content-Length: 0, \(hidden.utf8.count)\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "Transfer-Encoding: chunked, identity",
            bytes: allowed + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "two Transfer-Encoding headers, chunked first",
            bytes: allowed + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "Transfer-Encoding: xchunked",
            bytes: allowed + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "whitespace before the colon: Transfer-Encoding : chunked",
            bytes: allowed + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "a vertical tab before the value: Transfer-Encoding:\\vchunked",
            bytes: allowed + "Transfer-Encoding:\u{0B}chunked\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "Transfer-Encoding folded onto a continuation line",
            bytes: allowed + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "a chunk size with a leading sign or junk",
            bytes: allowed + "Transfer-Encoding: chunked\r\n\r\n+0\r\n\r\n" + hidden,
            outcome: .refused),
        Attempt(
            name: "a request hidden in a body that Content-Length covers",
            bytes: allowed + "Content-Length: \(hidden.utf8.count)\r\n\r\n" + hidden,
            outcome: .framed([200])),
        Attempt(
            name: "a request hidden in a chunked body",
            bytes: allowed + "Transfer-Encoding: chunked\r\n\r\n"
                + "\(String(hidden.utf8.count, radix: 16))\r\n\(hidden)\r\n0\r\n\r\n",
            outcome: .framed([200])),
        Attempt(
            name: "a second request pipelined after an empty body",
            bytes: allowed + "Content-Length: 0\r\n\r\n" + hidden,
            outcome: .framed([200, 403])),
        Attempt(
            name: "a second request pipelined after a chunked body",
            bytes: allowed + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + hidden,
            outcome: .framed([200, 403])),
    ]

    @Test("an ambiguous framing cannot carry a denied request past the proxy", arguments: attempts)
    func smuggling(attempt: Attempt) async throws {
        let harness = try await ProxyHarness(policies: Self.policies)
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(attempt.bytes)
        let forwarded = harness.upstream.requests.withLock { $0 }
        #expect(
            !forwarded.contains { $0.uri.contains("secrets") },
            "the denied request reached the upstream: \(forwarded.map(\.uri))")
        switch attempt.outcome {
        case .refused:
            #expect(exchange.codes == [400], "\(exchange.response)")
            #expect(exchange.closedByProxy, "the connection must be closed after a framing error")
            #expect(harness.upstream.rawText.isEmpty, "nothing may be forwarded: \(harness.upstream.rawText)")
        case .framed(let codes):
            #expect(exchange.codes == codes, "\(exchange.response)")
            #expect(forwarded.map(\.uri) == ["/api/v1/namespaces/dev/configmaps"])
            for request in forwarded {
                #expect(!request.headers.contains { $0.0.lowercased() == "transfer-encoding" })
                #expect(
                    request.headers.filter { $0.0.lowercased() == "content-length" }.map(\.1)
                        == [String(request.body.utf8.count)])
                #expect(!request.headers.contains { $0.1.contains("alice-token") })
            }
        }
    }

    @Test("a request that passes the gate and is followed by garbage gets its answer, then 400 and a close")
    func garbageAfterRequest() async throws {
        let harness = try await ProxyHarness(policies: Self.policies)
        defer { Task { try? await harness.shutdown() } }
        let exchange = try await harness.send(
            Self.allowed + "Content-Length: 2\r\n\r\n{}"
                + "GET /api/v1/namespaces/prod/secrets HTTP/1.1\r\nHost proxy\r\n\r\n")
        #expect(exchange.codes == [200, 400], "\(exchange.response)")
        #expect(exchange.closedByProxy)
        #expect(harness.upstream.requests.withLock { $0.map(\.uri) } == ["/api/v1/namespaces/dev/configmaps"])
    }
}
