import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Small requests to the Kubernetes API with a given identity: the proxy's own (AccessRequests,
/// TokenReviews) or a user's (`portcullis approve`). One connection per call is plenty for these.
public struct KubernetesClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data

        /// The `message` of a `v1.Status` body, for errors.
        public var statusMessage: String {
            ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["message"] as? String
                ?? String(decoding: body.prefix(500), as: UTF8.self)
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let pool: UpstreamConnectionPool
    let group: any EventLoopGroup

    /// Largest response read.
    static let maximumResponseBytes = 16 * 1024 * 1024
    static let timeout = TimeAmount.seconds(30)

    public init(
        configuration: UpstreamConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        self.pool = try UpstreamConnectionPool(configuration: configuration)
        self.group = group
    }

    /// Sends one request; `contentType` defaults to JSON.
    public func send(
        _ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json"
    )
        async throws -> Response
    {
        let eventLoop = group.next()
        let channel = try await pool.connect(on: eventLoop, http: true).get()
        defer { channel.close(promise: nil) }
        let configuration = pool.configuration
        var requestHeaders = HTTPHeaders([
            ("Host", configuration.port == 443 ? configuration.host : "\(configuration.host):\(configuration.port)"),
            ("Accept", "application/json"), ("User-Agent", "portcullis"), ("Connection", "close"),
        ])
        if let authorization = pool.authorization.headerValue() {
            requestHeaders.add(name: "Authorization", value: authorization)
        }
        if let body {
            requestHeaders.add(name: "Content-Type", value: contentType)
            requestHeaders.add(name: "Content-Length", value: String(body.count))
        }
        let headers = requestHeaders
        let promise = eventLoop.makePromise(of: Response.self)
        try await eventLoop.submit {
            // Exactly one of response, failure and timeout completes the request.
            let outcome = NIOLoopBound(Outcome(promise), eventLoop: eventLoop)
            let timeout = eventLoop.scheduleTask(in: Self.timeout) {
                outcome.value.finish(.failure(Failure(description: "\(method) \(path) timed out")))
                channel.close(promise: nil)
            }
            let router = try channel.pipeline.syncOperations.handler(type: UpstreamResponseRouter.self)
            var status = 0
            var received = Data()
            router.sink = { event in
                switch event {
                case .part(.head(let head)):
                    status = Int(head.status.code)
                case .part(.body(let buffer)):
                    received.append(contentsOf: buffer.readableBytesView)
                    if received.count > Self.maximumResponseBytes {
                        outcome.value.finish(
                            .failure(Failure(description: "the response exceeds \(Self.maximumResponseBytes) bytes")))
                        channel.close(promise: nil)
                    }
                case .part(.end):
                    outcome.value.finish(.success(Response(status: status, body: received)))
                case .readComplete:
                    break
                case .failed(let error):
                    outcome.value.finish(.failure(error))
                }
                if outcome.value.done { timeout.cancel() }
            }
            channel.write(
                HTTPClientRequestPart.head(
                    HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)), promise: nil)
            if let body {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }.get()
        return try await promise.futureResult.get()
    }

    /// Sends a JSON object and decodes a JSON object; non-2xx answers throw with the Status message.
    public func json(
        _ method: HTTPMethod, _ path: String, _ object: Any? = nil, contentType: String = "application/json"
    )
        async throws -> [String: Any]
    {
        let body = try object.map { try JSONSerialization.data(withJSONObject: $0) }
        let response = try await send(method, path, body: body, contentType: contentType)
        guard (200..<300).contains(response.status) else {
            throw Failure(description: "\(method) \(path): \(response.status) \(response.statusMessage)")
        }
        return (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }
}

/// Completes a promise once, whatever completes it first.
private final class Outcome {
    private let promise: EventLoopPromise<KubernetesClient.Response>
    private(set) var done = false

    init(_ promise: EventLoopPromise<KubernetesClient.Response>) { self.promise = promise }

    func finish(_ result: Result<KubernetesClient.Response, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
