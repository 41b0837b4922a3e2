import Foundation
import NIOCore
import NIOHTTP1

extension KubernetesClient {
    /// One event of a watch: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`, and its object
    /// (for `ERROR`, a `v1.Status`).
    public struct WatchEvent: @unchecked Sendable {
        // [String: Any] from JSONSerialization holds only Foundation property-list values.
        public var type: String
        public var object: [String: Any]

        public init(line: [UInt8]) throws {
            guard let event = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let type = event["type"] as? String, let object = event["object"] as? [String: Any]
            else { throw Failure(description: "a watch event is not {type, object}") }
            self.type = type
            self.object = object
        }

        public var resourceVersion: String? {
            (object["metadata"] as? [String: Any])?["resourceVersion"] as? String
        }
    }

    /// Watches `path` (a collection, with its query but without `watch=1`) and hands `consume` the
    /// events until the server ends the response, which it does after `timeoutSeconds` as asked.
    /// A stream that stays silent for `idleLimit` is taken for dead and ends with an error, since a
    /// half-open TCP connection would otherwise wait forever.
    ///
    /// The connection lives in a child task: when `consume` returns or throws, it is closed and
    /// waited for, so no request of this watch outlives the call.
    public func watch<Result: Sendable>(
        _ path: String, idleLimit: Duration,
        consume: (AsyncThrowingStream<WatchEvent, any Error>) async throws -> Result
    ) async throws -> Result {
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, any Error>.makeStream()
        let separator = path.contains("?") ? "&" : "?"
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await self.streamLines(
                        "\(path)\(separator)watch=1", idleLimit: idleLimit,
                        onLine: { line in continuation.yield(try WatchEvent(line: line)) })
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            do {
                let result = try await consume(stream)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Sends a GET and hands each line of a 200 response to `onLine`, on the connection's event
    /// loop, until the response ends. Any other status throws with the Status message.
    func streamLines(
        _ path: String, idleLimit: Duration, onLine: @escaping @Sendable ([UInt8]) throws -> Void
    ) async throws {
        let eventLoop = group.next()
        let channel = try await pool.connect(on: eventLoop, http: true).get()
        guard !Task.isCancelled else {
            channel.close(promise: nil)
            throw CancellationError()
        }
        let configuration = pool.configuration
        var headers = HTTPHeaders([
            ("Host", configuration.port == 443 ? configuration.host : "\(configuration.host):\(configuration.port)"),
            ("Accept", "application/json"), ("User-Agent", "portcullis"),
        ])
        if let authorization = pool.authorization.headerValue() {
            headers.add(name: "Authorization", value: authorization)
        }
        let requestHeaders = headers
        let idle = TimeAmount.nanoseconds(
            idleLimit.components.seconds * 1_000_000_000 + idleLimit.components.attoseconds / 1_000_000_000)
        let promise = eventLoop.makePromise(of: Void.self)
        try await eventLoop.submit {
            let state = NIOLoopBound(WatchState(promise: promise, channel: channel), eventLoop: eventLoop)
            func armIdleTimer() {
                state.value.idleTimer?.cancel()
                state.value.idleTimer = eventLoop.scheduleTask(in: idle) {
                    state.value.finish(.failure(Failure(description: "GET \(path): no data for \(idleLimit)")))
                }
            }
            func finish(_ result: Result<Void, any Error>) { state.value.finish(result) }
            armIdleTimer()
            let router = try channel.pipeline.syncOperations.handler(type: UpstreamResponseRouter.self)
            router.sink = { event in
                do {
                    switch event {
                    case .part(.head(let head)):
                        state.value.status = Int(head.status.code)
                    case .part(.body(let buffer)):
                        armIdleTimer()
                        if state.value.status != 200 {
                            if state.value.errorBody.count < 64 * 1024 {
                                state.value.errorBody.append(contentsOf: buffer.readableBytesView)
                            }
                            return
                        }
                        state.value.lines.append(buffer)
                        while let line = try state.value.lines.nextLine() { try onLine(line) }
                    case .part(.end):
                        if state.value.status != 200 {
                            let message = Response(status: state.value.status, body: state.value.errorBody)
                                .statusMessage
                            throw Failure(description: "GET \(path): \(state.value.status) \(message)")
                        }
                        if state.value.lines.hasPartialLine {
                            throw Failure(description: "GET \(path): the watch ended inside an event")
                        }
                        finish(.success(()))
                    case .readComplete:
                        break
                    case .failed(let error):
                        throw error
                    }
                } catch {
                    finish(.failure(error))
                }
            }
            channel.write(
                HTTPClientRequestPart.head(
                    HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: requestHeaders)),
                promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }.get()
        try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

/// What a watch connection has seen so far; touched only on its event loop.
private final class WatchState {
    var status = 0
    var errorBody = Data()
    var lines = WatchLineBuffer()
    var idleTimer: Scheduled<Void>?
    private var done = false
    private let promise: EventLoopPromise<Void>
    private let channel: any Channel

    init(promise: EventLoopPromise<Void>, channel: any Channel) {
        self.promise = promise
        self.channel = channel
    }

    /// Completes the watch once, whatever ends it first, and closes its connection.
    func finish(_ result: Result<Void, any Error>) {
        guard !done else { return }
        done = true
        idleTimer?.cancel()
        promise.completeWith(result)
        channel.close(promise: nil)
    }
}
