import NIOCore
import Testing

@testable import SPDY

@Suite("Stream state machine")
struct StreamStateMachineTests {
    static func data(_ text: String, fin: Bool = false) -> SPDYDataFrame {
        SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(string: text), isFin: fin)
    }

    @Test("our FIN then theirs closes the stream; theirs then ours too")
    func halfCloses() throws {
        var stream = SPDYStreamStateMachine.openedLocally(SPDYStreamID(1), isFin: false)
        #expect(stream.receivedReply(isFin: false) == .forward)
        try stream.sendData(isFin: true)
        #expect(stream.hasSentFin && !stream.isClosed)
        expectSPDYError { try stream.sendData(isFin: false) }
        #expect(stream.receivedData(Self.data("x", fin: true), maxBufferedBeforeReply: 10) == .forward)
        #expect(stream.isClosed)

        var other = SPDYStreamStateMachine.openedLocally(SPDYStreamID(1), isFin: false)
        #expect(other.receivedReply(isFin: true) == .forward)
        try other.sendData(isFin: false)
        try other.sendData(isFin: true)
        #expect(other.isClosed)
    }

    @Test("DATA for a peer's stream waits for our SYN_REPLY and is handed over, FIN included, when we reply")
    func bufferingBeforeReply() throws {
        var stream = SPDYStreamStateMachine.openedByPeer(SPDYStreamID(1), isFin: false)
        expectSPDYError { try stream.sendData(isFin: false) }
        #expect(stream.receivedData(Self.data("abc"), maxBufferedBeforeReply: 10) == .buffered)
        #expect(stream.receivedData(Self.data("de", fin: true), maxBufferedBeforeReply: 10) == .buffered)
        let pending = try stream.sendReply(isFin: false)
        #expect(pending == [Self.data("abc"), Self.data("de", fin: true)])
        #expect(!stream.isClosed)
        try stream.sendData(isFin: true)
        #expect(stream.isClosed)
    }

    @Test("maxBufferedBytesBeforeReply: exactly the limit is held, one byte more resets with FLOW_CONTROL_ERROR")
    func bufferLimit() throws {
        var stream = SPDYStreamStateMachine.openedByPeer(SPDYStreamID(1), isFin: false)
        #expect(stream.receivedData(Self.data("12345"), maxBufferedBeforeReply: 10) == .buffered)
        #expect(stream.receivedData(Self.data("67890"), maxBufferedBeforeReply: 10) == .buffered)
        guard case .reset(let error) = stream.receivedData(Self.data("x"), maxBufferedBeforeReply: 10) else {
            Issue.record("expected a reset")
            return
        }
        #expect(error.kind == .tooMuchDataBeforeReply)
        #expect(error.wireAction == .resetStream(SPDYStreamID(1), .flowControlError))
        #expect(stream.isClosed)
    }

    @Test("a SYN_STREAM with FIN is delivered as an empty FIN once we reply")
    func synWithFin() throws {
        var stream = SPDYStreamStateMachine.openedByPeer(SPDYStreamID(1), isFin: true)
        #expect(
            try stream.sendReply(isFin: false) == [
                SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(), isFin: true)
            ])
        try stream.sendData(isFin: true)
        #expect(stream.isClosed)
    }

    @Test("protocol violations reset with the §1.5 status codes")
    func violations() throws {
        var afterFin = SPDYStreamStateMachine.openedLocally(SPDYStreamID(1), isFin: false)
        _ = afterFin.receivedReply(isFin: true)
        guard case .reset(let late) = afterFin.receivedData(Self.data("x"), maxBufferedBeforeReply: 10) else {
            Issue.record("expected a reset")
            return
        }
        #expect(late.wireAction == .resetStream(SPDYStreamID(1), .streamAlreadyClosed))

        var twice = SPDYStreamStateMachine.openedLocally(SPDYStreamID(1), isFin: false)
        _ = twice.receivedReply(isFin: false)
        guard case .reset(let duplicate) = twice.receivedReply(isFin: false) else {
            Issue.record("expected a reset")
            return
        }
        #expect(duplicate.wireAction == .resetStream(SPDYStreamID(1), .streamInUse))

        var peers = SPDYStreamStateMachine.openedByPeer(SPDYStreamID(1), isFin: false)
        guard case .reset(let unexpected) = peers.receivedReply(isFin: false) else {
            Issue.record("expected a reset")
            return
        }
        #expect(unexpected.wireAction == .resetStream(SPDYStreamID(1), .protocolError))
    }

    @Test("after an RST nothing more is answered, and a second RST is not sent")
    func resets() {
        var stream = SPDYStreamStateMachine.openedLocally(SPDYStreamID(1), isFin: false)
        let wasLive = stream.receivedReset()
        #expect(wasLive)
        #expect(stream.receivedData(Self.data("x"), maxBufferedBeforeReply: 10) == .ignore)
        let sendsReset = stream.sendReset()
        #expect(!sendsReset)
    }
}

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func syn(_ id: UInt32, fin: Bool = false) -> SPDYFrame {
        .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(id), headers: ["streamtype": "x"], isFin: fin))
    }

    static func data(_ id: UInt32, fin: Bool = false) -> SPDYFrame {
        .data(SPDYDataFrame(streamID: SPDYStreamID(id), data: ByteBuffer(string: "d"), isFin: fin))
    }

    static func rst(_ id: UInt32, _ status: SPDYStreamStatus) -> SPDYRstStreamFrame {
        SPDYRstStreamFrame(streamID: SPDYStreamID(id), status: status)
    }

    @Test("client ids must be odd and strictly increase; a regression is reset with PROTOCOL_ERROR")
    func streamIDs() {
        var machine = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        #expect(machine.received(Self.syn(1)) == .forward)
        #expect(machine.received(Self.syn(5)) == .forward)
        #expect(machine.received(Self.syn(3)) == .resetStream(Self.rst(3, .protocolError), notify: false))
        #expect(machine.received(Self.syn(5)) == .resetStream(Self.rst(5, .protocolError), notify: true))
        #expect(machine.received(Self.syn(8)) == .resetStream(Self.rst(8, .protocolError), notify: false))
        #expect(machine.received(Self.syn(7)) == .forward)
        #expect(machine.openStreamCount == 2)
    }

    @Test("maxConcurrentStreams: the limit-th stream is accepted, the next refused with REFUSED_STREAM")
    func concurrency() {
        var machine = SPDYConnectionStateMachine(
            role: .server, limits: SPDYLimits(maxConcurrentStreams: 2), now: Self.start)
        #expect(machine.received(Self.syn(1)) == .forward)
        #expect(machine.received(Self.syn(3)) == .forward)
        #expect(machine.received(Self.syn(5)) == .resetStream(Self.rst(5, .refusedStream), notify: false))
        #expect(machine.received(.rstStream(Self.rst(1, .cancel))) == .forward)
        #expect(machine.received(Self.syn(7)) == .forward)
    }

    @Test("peer pings are echoed; replies to ours are consumed")
    func pings() {
        var server = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        #expect(server.received(.ping(SPDYPingFrame(id: 1))) == .reply(.ping(SPDYPingFrame(id: 1))))
        #expect(server.received(.ping(SPDYPingFrame(id: 2))) == .ignore)
        var client = SPDYConnectionStateMachine(role: .client, limits: .default, now: Self.start)
        let ping = client.nextPing()
        #expect(ping == SPDYPingFrame(id: 1))
        #expect(client.nextPing() == SPDYPingFrame(id: 3))
        #expect(client.received(.ping(SPDYPingFrame(id: 1))) == .ignore)
        #expect(client.received(.ping(SPDYPingFrame(id: 2))) == .reply(.ping(SPDYPingFrame(id: 2))))
    }

    @Test("frames for unknown streams: ignored if the id was used, INVALID_STREAM otherwise")
    func unknownStreams() {
        var machine = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        _ = machine.received(Self.syn(1))
        _ = machine.received(.rstStream(Self.rst(1, .cancel)))
        #expect(machine.received(Self.data(1)) == .ignore)
        #expect(machine.received(Self.data(3)) == .resetStream(Self.rst(3, .invalidStream), notify: false))
        #expect(machine.received(.rstStream(Self.rst(9, .cancel))) == .ignore)
    }

    @Test("DATA before our reply is buffered and released by the reply")
    func replyReleasesData() throws {
        var machine = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        #expect(machine.received(Self.syn(1)) == .forward)
        #expect(machine.received(Self.data(1)) == .buffered)
        expectSPDYError { _ = try machine.send(Self.data(1)) }
        let released = try machine.send(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1))))
        #expect(released.count == 1)
        #expect(machine.received(Self.data(1)) == .forward)
    }

    @Test("our streams use the next id of our parity; the peer's GOAWAY stops new ones and drains")
    func ownStreamsAndGoAway() throws {
        var machine = SPDYConnectionStateMachine(role: .client, limits: .default, now: Self.start)
        let first = try machine.nextStreamID()
        #expect(first == SPDYStreamID(1))
        _ = try machine.send(Self.syn(1))
        #expect(try machine.nextStreamID() == SPDYStreamID(3))
        expectSPDYError { _ = try machine.send(Self.syn(1)) }
        #expect(machine.received(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1)))) == .forward)
        _ = try machine.send(Self.syn(3))
        #expect(
            machine.received(.goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(1), status: .ok)))
                == .forwardGoAway(abandoned: [SPDYStreamID(3)]))
        let error = expectSPDYError { _ = try machine.nextStreamID() }
        #expect(error?.kind == .goAwayReceived)
        #expect(!machine.isDrained)
        _ = try machine.send(Self.data(1, fin: true))
        #expect(machine.received(Self.data(1, fin: true)) == .forward)
        #expect(machine.isDrained)
    }

    @Test("after the peer's GOAWAY its new streams are refused")
    func refuseWhileDraining() {
        var machine = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        _ = machine.received(Self.syn(1))
        _ = machine.received(.goAway(SPDYGoAwayFrame(lastGoodStreamID: .none, status: .ok)))
        #expect(machine.received(Self.syn(3)) == .resetStream(Self.rst(3, .refusedStream), notify: false))
    }

    @Test("closing resets every stream we have not finished, then GOAWAY with the last accepted id, and nothing more")
    func shutdown() throws {
        var machine = SPDYConnectionStateMachine(role: .server, limits: .default, now: Self.start)
        for id in [1, 3, 5, 7] as [UInt32] {
            _ = machine.received(Self.syn(id))
            _ = try machine.send(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(id))))
        }
        _ = try machine.send(Self.data(5, fin: true))
        _ = machine.received(Self.syn(9))
        _ = machine.received(Self.syn(4))  // refused: wrong parity, not accepted
        let shutdown = machine.close(status: .ok)
        #expect(shutdown.resets.map(\.streamID.rawValue) == [1, 3, 7, 9])
        #expect(shutdown.goAway == SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(9), status: .ok))
        #expect(machine.isClosed)
        #expect(machine.close(status: .ok).goAway == nil)
        expectSPDYError { _ = try machine.send(Self.data(1)) }
        #expect(machine.received(Self.syn(11)) == .ignore)
    }

    @Test("idleness is measured from the last activity with the injected clock")
    func idle() {
        var machine = SPDYConnectionStateMachine(
            role: .server, limits: SPDYLimits(idleTimeout: .seconds(10)), now: Self.start)
        #expect(!machine.isIdle(now: Self.start + .seconds(9)))
        machine.recordActivity(now: Self.start + .seconds(5))
        #expect(!machine.isIdle(now: Self.start + .seconds(14)))
        #expect(machine.isIdle(now: Self.start + .seconds(15)))
        #expect(machine.idleDeadline == Self.start + .seconds(15))
    }
}
