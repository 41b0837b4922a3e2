import Foundation
import NIOCore
import NIOHTTP1

/// Joins an authorized upgrade request (SPDY or WebSocket) to a fresh upstream connection as a
/// byte pipe.
///
/// The client's bytes are held back until the upstream answers `101 Switching Protocols`: if it
/// refuses (RBAC's 403, a kubelet's 400 for an unsupported WebSocket protocol, which makes kubectl
/// fall back to SPDY), the refusal is passed on and both connections close, so nothing the client
/// sends afterwards can reach the apiserver without going through the gate again.
enum UpgradeSplice {
    static func install(
        downstream: Channel, upstream: Channel, requestHead: HTTPRequestHead, audit: AuditRecord,
        services: ProxyServices
    ) throws {
        let session = SpliceSession(downstream: downstream, upstream: upstream, audit: audit, services: services)
        let downstreamSide = SpliceHandler(session: session, side: .downstream)
        let upstreamSide = SpliceHandler(session: session, side: .upstream)
        session.downstreamHandler = downstreamSide
        session.upstreamHandler = upstreamSide
        let sync = downstream.pipeline.syncOperations
        // Leftover bytes held by the HTTP decoder are forwarded to the splice when it is removed.
        try sync.addHandler(downstreamSide)
        for name in ProxyServer.httpHandlerNames.reversed() {
            sync.removeHandler(name: name).whenFailure { _ in downstream.close(promise: nil) }
        }
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        upstream.writeAndFlush(serialize(requestHead), promise: nil)
    }

    static func serialize(_ head: HTTPRequestHead) -> ByteBuffer {
        var text = "\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n"
        for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return ByteBuffer(string: text)
    }
}

/// The state shared by both halves of one spliced connection; lives on one event loop.
final class SpliceSession {
    enum Phase {
        /// Waiting for the upstream's response head; client bytes are held.
        case awaitingResponse(head: ByteBuffer, held: [ByteBuffer])
        /// 101 seen: bytes flow both ways.
        case upgraded
        /// A refusal is being passed on; `remaining` body bytes (nil: until upstream closes).
        case refusing(remaining: Int?)
        case closed
    }

    /// Largest response head accepted from upstream.
    static let maximumResponseHead = 64 * 1024

    let downstream: Channel
    let upstream: Channel
    var audit: AuditRecord
    let services: ProxyServices
    var phase = Phase.awaitingResponse(head: ByteBuffer(), held: [])
    weak var downstreamHandler: SpliceHandler?
    weak var upstreamHandler: SpliceHandler?

    init(downstream: Channel, upstream: Channel, audit: AuditRecord, services: ProxyServices) {
        self.downstream = downstream
        self.upstream = upstream
        self.audit = audit
        self.services = services
    }

    func fromClient(_ buffer: ByteBuffer) {
        switch phase {
        case .awaitingResponse(let head, var held):
            held.append(buffer)
            phase = .awaitingResponse(head: head, held: held)
        case .upgraded:
            upstream.writeAndFlush(buffer, promise: nil)
            if !upstream.isWritable { downstream.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
        case .refusing, .closed:
            break
        }
    }

    func fromUpstream(_ buffer: ByteBuffer) {
        switch phase {
        case .awaitingResponse(var head, let held):
            var incoming = buffer
            head.writeBuffer(&incoming)
            let view = head.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
                if head.readableBytes > Self.maximumResponseHead {
                    close(code: 502)
                } else {
                    phase = .awaitingResponse(head: head, held: held)
                }
                return
            }
            let headLength = view.distance(from: view.startIndex, to: end.upperBound)
            let headText = String(decoding: view.prefix(headLength), as: UTF8.self)
            let statusCode = Self.statusCode(headText)
            audit.responseCode = statusCode
            downstream.writeAndFlush(head, promise: nil)
            if statusCode == 101 {
                phase = .upgraded
                for chunk in held { upstream.write(chunk, promise: nil) }
                upstream.flush()
            } else {
                let bodyReceived = head.readableBytes - headLength
                let remaining = Self.contentLength(headText).map { max(0, $0 - bodyReceived) }
                phase = .refusing(remaining: remaining)
                if remaining == 0 { close(code: statusCode) }
            }
        case .upgraded:
            downstream.writeAndFlush(buffer, promise: nil)
            if !downstream.isWritable { upstream.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
        case .refusing(let remaining):
            downstream.writeAndFlush(buffer, promise: nil)
            if let remaining {
                let left = remaining - buffer.readableBytes
                if left <= 0 { close(code: audit.responseCode) } else { phase = .refusing(remaining: left) }
            }
        case .closed:
            break
        }
    }

    func writabilityChanged(of side: SpliceHandler.Side) {
        // Reads on one side resume when the other side can take bytes again.
        switch side {
        case .downstream where downstream.isWritable:
            upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        case .upstream where upstream.isWritable:
            downstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        default:
            break
        }
    }

    func close(code: Int? = nil) {
        if case .closed = phase { return }
        if let code, audit.responseCode == 0 { audit.responseCode = code }
        phase = .closed
        services.record(audit)
        // Let written bytes (a refusal, the last frames) reach the client before closing.
        downstream.writeAndFlush(ByteBuffer()).whenComplete { [downstream] _ in downstream.close(promise: nil) }
        upstream.close(promise: nil)
    }

    static func statusCode(_ head: String) -> Int {
        let firstLine = head.prefix { $0 != "\r" }
        let parts = firstLine.split(separator: " ")
        return parts.count >= 2 ? Int(parts[1]) ?? 502 : 502
    }

    static func contentLength(_ head: String) -> Int? {
        for line in head.split(separator: "\r\n") {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "content-length" {
                return Int(pair[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }
}

/// One side of a spliced connection.
final class SpliceHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    enum Side { case downstream, upstream }

    private let session: SpliceSession
    private let side: Side

    init(session: SpliceSession, side: Side) {
        self.session = session
        self.side = side
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch side {
        case .downstream: session.fromClient(buffer)
        case .upstream: session.fromUpstream(buffer)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.writabilityChanged(of: side)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.close()
    }
}
