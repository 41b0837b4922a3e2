import NIOCore
import Testing

@testable import SPDY

@Suite("Decoding the protocols.md §9 vectors")
struct FrameDecoderVectorTests {
    /// Decodes a whole session, one decoder (one inflate context) per direction, in wire order.
    static func decodeSession(_ session: [(TestVectors.Direction, String)]) throws -> [SPDYFrame] {
        var fromClient = SPDYFrameDecoder()
        var fromServer = SPDYFrameDecoder()
        var frames: [SPDYFrame] = []
        for (direction, hex) in session {
            let decoded =
                direction == .clientToServer
                ? try fromClient.decodeAll(ByteBuffer(hex: hex)) : try fromServer.decodeAll(ByteBuffer(hex: hex))
            #expect(decoded.count == 1, "\(hex) should hold exactly one frame")
            frames += decoded
        }
        return frames
    }

    @Test("§9.1 exec -i -t decodes frame by frame with one zlib context per direction")
    func execSession() throws {
        let frames = try Self.decodeSession(TestVectors.execSession)
        let syn = { (id: UInt32, type: String) in
            SPDYFrame.synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(id), headers: ["streamtype": type]))
        }
        let reply = { (id: UInt32) in SPDYFrame.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(id))) }
        let data = { (id: UInt32, text: String) in
            SPDYFrame.data(SPDYDataFrame(streamID: SPDYStreamID(id), data: ByteBuffer(string: text)))
        }
        let status =
            #"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","#
            + #""reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        let rst = { (id: UInt32) in
            SPDYFrame.rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(id), status: .cancel))
        }
        let expected: [SPDYFrame] = [
            syn(1, "error"), reply(1), syn(3, "stdin"), reply(3), syn(5, "stdout"), reply(5), syn(7, "resize"),
            reply(7), data(7, "{\"Width\":80,\"Height\":24}\n"), data(3, "exit 3\r"), data(5, "exit 3\r\n"),
            .ping(SPDYPingFrame(id: 1)), .ping(SPDYPingFrame(id: 1)), data(1, status), rst(1), rst(3), rst(5), rst(7),
            .goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(7), status: .ok)),
        ]
        #expect(frames == expected)
        if case .data(let statusFrame) = frames[13] { #expect(statusFrame.data.readableBytes == 190) }
    }

    @Test("§9.2 port-forward decodes, with Go's map-ordered headers and an empty DATA+FIN")
    func portForwardSession() throws {
        let frames = try Self.decodeSession(TestVectors.portForwardSession)
        guard case .synStream(let error) = frames[0], case .synStream(let data) = frames[3] else {
            Issue.record("expected SYN_STREAMs, got \(frames)")
            return
        }
        #expect(error.headers.pairs.map(\.name) == ["port", "requestid", "streamtype"])
        #expect(error.headers.first(name: "streamType") == "error")
        #expect(error.headers.first(name: "port") == "8080")
        #expect(error.headers.first(name: "requestID") == "0")
        #expect(data.headers.pairs.map(\.name) == ["streamtype", "port", "requestid"])
        #expect(data.headers.first(name: "streamtype") == "data")
        #expect(frames[2] == .data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(), isFin: true)))
        #expect(
            frames[5]
                == .data(SPDYDataFrame(streamID: SPDYStreamID(3), data: ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))))
        #expect(frames[6] == .data(SPDYDataFrame(streamID: SPDYStreamID(3), data: ByteBuffer(), isFin: true)))
    }

    @Test("§9.3 frames without header blocks decode to their fields")
    func frameWithoutHeaderBlocks() throws {
        var decoder = SPDYFrameDecoder()
        let frames = try decoder.decodeAll(
            ByteBuffer(
                hex: "80030009000000080000000300010000" + "800300040000000c000000010000000700010000"
                    + "80030007000000080000000000000000"))
        #expect(
            frames == [
                .windowUpdate(SPDYWindowUpdateFrame(streamID: SPDYStreamID(3), deltaWindowSize: 65536)),
                .settings(SPDYSettingsFrame(entries: [.init(id: .initialWindowSize, value: 65536)])),
                .goAway(SPDYGoAwayFrame(lastGoodStreamID: .none, status: .ok)),
            ])
    }

    @Test("the whole §9.1 client stream decodes the same when drip-fed one byte at a time")
    func dripFed() throws {
        var whole = ByteBuffer()
        for (direction, hex) in TestVectors.execSession where direction == .clientToServer {
            whole.writeImmutableBuffer(ByteBuffer(hex: hex))
        }
        var reference = SPDYFrameDecoder()
        let expected = try reference.decodeAll(whole)
        var decoder = SPDYFrameDecoder()
        var frames: [SPDYFrame] = []
        for byte in whole.readableBytesView {
            frames += try decoder.decodeAll(ByteBuffer(bytes: [byte]))
        }
        #expect(frames == expected)
        #expect(frames.count == 7)
        #expect(decoder.bufferedBytes == 0)
    }
}

@Suite("Header blocks compressed by C zlib (§9.4) and negative cases")
struct HeaderBlockInteropTests {
    static func synStream(id: UInt32, block hex: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeMultipleIntegers(id, UInt32(0), UInt16(0))
        payload.writeImmutableBuffer(ByteBuffer(hex: hex))
        return controlFrame(type: 1, payload: payload)
    }

    @Test("two C-zlib blocks decode in sequence through one inflate context")
    func cZlibBlocks() throws {
        var decoder = SPDYFrameDecoder()
        let frames = try decoder.decodeAll(
            Self.synStream(id: 1, block: TestVectors.cZlibBlock1).appending(
                Self.synStream(id: 3, block: TestVectors.cZlibBlock2)))
        #expect(
            frames == [
                .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["streamtype": "error"])),
                .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(3), headers: ["streamtype": "stdin"])),
            ])
    }

    @Test("our deflater with zlib's standard parameters reproduces the C-zlib blocks byte for byte")
    func encoderMatchesCZlib() throws {
        var encoder = SPDYFrameEncoder(compression: .standard)
        var buffer = ByteBuffer()
        try encoder.encode(
            .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["streamtype": "error"])), into: &buffer)
        #expect(buffer.getSlice(at: 18, length: buffer.readableBytes - 18)!.hex == TestVectors.cZlibBlock1)
        buffer.clear()
        try encoder.encode(
            .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(3), headers: ["streamtype": "stdin"])), into: &buffer)
        #expect(buffer.getSlice(at: 18, length: buffer.readableBytes - 18)!.hex == TestVectors.cZlibBlock2)
    }

    @Test("a second block compressed with a fresh zlib stream is a session error")
    func freshStreamOnSecondBlock() throws {
        var decoder = SPDYFrameDecoder()
        _ = try decoder.decodeAll(Self.synStream(id: 1, block: TestVectors.cZlibBlock1))
        // A fresh stream restarts with the zlib header 78 f9 e3c6a7c2: corrupt input mid-stream.
        let fresh = SPDYHeaderDeflater(parameters: .standard)
        let frame = try synStreamFrame(id: 3, plain: rawHeaderBlock([("streamtype", "stdin")]), deflater: fresh)
        #expect(frame.getSlice(at: 18, length: 2)!.hex == "78f9")
        let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(frame) }
        #expect(error?.kind == .headerDecompressionFailed)
        #expect(error?.wireAction == .goAway(.protocolError))
        // The context is now unusable: everything after fails too.
        #expect(throws: SPDYError.self) { try decoder.decodeAll(ByteBuffer(hex: "800300060000000400000001")) }
    }

    @Test("an upper-case header name is a session error, as it is for Go")
    func upperCaseName() throws {
        let deflater = SPDYHeaderDeflater()
        var decoder = SPDYFrameDecoder()
        let frame = try synStreamFrame(id: 1, plain: rawHeaderBlock([("StreamType", "error")]), deflater: deflater)
        let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(frame) }
        #expect(error?.kind == .invalidHeaderName)
        #expect(error?.wireAction == .goAway(.protocolError))
    }

    @Test("port: 80 then port: 22 reads as Go does, first value 80, and is refused where one value is required")
    func duplicatedPort() throws {
        let deflater = SPDYHeaderDeflater()
        var decoder = SPDYFrameDecoder()
        let repeated = try synStreamFrame(
            id: 1, plain: rawHeaderBlock([("streamtype", "data"), ("port", "80"), ("port", "22")]), deflater: deflater)
        let joined = try synStreamFrame(
            id: 3, plain: rawHeaderBlock([("streamtype", "data"), ("port", "80\u{0}22")]), deflater: deflater)
        for frame in try decoder.decodeAll(repeated.appending(joined)) {
            guard case .synStream(let syn) = frame else {
                Issue.record("expected SYN_STREAM")
                continue
            }
            #expect(syn.headers.values(forName: "port") == ["80", "22"])
            #expect(syn.headers.first(name: "Port") == "80")
            let error = #expect(throws: SPDYError.self) { try syn.headers.singleValue(forName: "port") }
            #expect(error?.kind == .invalidHeaderValue)
            #expect(try syn.headers.singleValue(forName: "streamtype") == "data")
        }
    }

    @Test("connection-specific headers are refused: host only in SYN_STREAM, the rest in both")
    func forbiddenHeaders() throws {
        for (name, type, forbidden) in [
            ("host", UInt16(1), true), ("host", UInt16(2), false), ("connection", UInt16(2), true),
            ("transfer-encoding", UInt16(1), true), ("keep-alive", UInt16(8), true),
        ] {
            let deflater = SPDYHeaderDeflater()
            var payload = ByteBuffer()
            payload.writeInteger(UInt32(1))
            if type == 1 { payload.writeMultipleIntegers(UInt32(0), UInt16(0)) }
            try deflater.compress(rawHeaderBlock([(name, "x")]), into: &payload)
            var decoder = SPDYFrameDecoder()
            if forbidden {
                let error = #expect(throws: SPDYError.self) {
                    try decoder.decodeAll(controlFrame(type: type, payload: payload))
                }
                #expect(error?.kind == .forbiddenHeader)
            } else {
                #expect(try decoder.decodeAll(controlFrame(type: type, payload: payload)).count == 1)
            }
        }
    }

    @Test("a SYN_REPLY with no header block at all (length 4) is refused, as Go refuses it")
    func replyWithoutBlock() throws {
        var decoder = SPDYFrameDecoder()
        let error = #expect(throws: SPDYError.self) {
            try decoder.decodeAll(ByteBuffer(hex: "800300020000000400000001"))
        }
        #expect(error?.kind == .invalidHeaderBlock)
    }

    @Test("malformed inflated blocks are refused: short counts, overruns, leftovers, empty names")
    func malformedBlocks() throws {
        var tooFewPairs = rawHeaderBlock([("a", "b")], count: 2)
        var leftover = rawHeaderBlock([("a", "b")])
        leftover.writeInteger(UInt8(0))
        var hugeCount = ByteBuffer()
        hugeCount.writeInteger(UInt32.max)
        var nameOverrun = ByteBuffer()
        nameOverrun.writeMultipleIntegers(UInt32(1), UInt32(100))
        let cases: [(ByteBuffer, SPDYError.Kind)] = [
            (tooFewPairs, .invalidHeaderBlock), (leftover, .invalidHeaderBlock), (hugeCount, .invalidHeaderBlock),
            (nameOverrun, .invalidHeaderBlock), (rawHeaderBlock([("", "x")]), .invalidHeaderName),
            (rawHeaderBlock([("a b", "x")]), .invalidHeaderName), (ByteBuffer(bytes: [0, 0]), .invalidHeaderBlock),
        ]
        tooFewPairs.moveReaderIndex(forwardBy: 0)
        for (block, kind) in cases {
            var decoder = SPDYFrameDecoder()
            let frame = try synStreamFrame(id: 1, plain: block, deflater: SPDYHeaderDeflater())
            let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(frame) }
            #expect(error?.kind == kind)
        }
    }

    @Test("a zlib stream using another dictionary is refused")
    func wrongDictionary() throws {
        // 78 f9 + DICTID df a2 51 b2: the SPDY/2 dictionary.
        var decoder = SPDYFrameDecoder()
        let error = #expect(throws: SPDYError.self) {
            try decoder.decodeAll(Self.synStream(id: 1, block: "78f9dfa251b2626060600000000000ffff"))
        }
        #expect(error?.kind == .headerDecompressionFailed)
    }

    @Test("compressed bytes left over after the block are refused (a finished zlib stream)")
    func finishedStream() throws {
        // The §9.4 block compressed with Z_FINISH (by CPython's zlib), plus one stray byte after the stream's end.
        var decoder = SPDYFrameDecoder()
        let block = "78f9e3c6a7c203a62346703a2b294a4dcc851625aca9a0800600460a0689" + "00"
        let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(Self.synStream(id: 1, block: block)) }
        #expect(error?.kind == .headerDecompressionFailed)
    }
}

extension ByteBuffer {
    func appending(_ other: ByteBuffer) -> ByteBuffer {
        var copy = self
        copy.writeImmutableBuffer(other)
        return copy
    }
}
