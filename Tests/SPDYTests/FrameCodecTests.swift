import NIOCore
import Testing

@testable import SPDY

@Suite("Frame encoder")
struct FrameEncoderTests {
    static let sampleFrames: [SPDYFrame] = [
        .synStream(
            SPDYSynStreamFrame(
                streamID: SPDYStreamID(1), headers: ["streamtype": "error", "port": "8080", "requestid": "0"])),
        .synStream(
            SPDYSynStreamFrame(
                streamID: SPDYStreamID(3), headers: ["streamtype": "stdin"], isFin: true, isUnidirectional: true,
                associatedStreamID: SPDYStreamID(1), priority: 7, slot: 9)),
        .synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1))),
        .synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(3), headers: ["multi": "a\u{0}b"], isFin: true)),
        .headers(SPDYHeadersFrame(streamID: SPDYStreamID(3), headers: ["x-a": ""], isFin: true)),
        .data(SPDYDataFrame(streamID: SPDYStreamID(3), data: ByteBuffer(string: "hello"))),
        .data(SPDYDataFrame(streamID: SPDYStreamID(3), data: ByteBuffer(), isFin: true)),
        .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(5), status: .cancel)),
        .settings(
            SPDYSettingsFrame(
                entries: [.init(id: .maxConcurrentStreams, value: 100, flags: .persistValue)], clearSettings: true)),
        .ping(SPDYPingFrame(id: 0xFFFF_FFFF)),
        .goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(7), status: .internalError)),
        .windowUpdate(SPDYWindowUpdateFrame(streamID: .none, deltaWindowSize: 0x7FFF_FFFF)),
    ]

    @Test("every frame type round-trips through one encoder and one decoder")
    func roundTrip() throws {
        var encoder = SPDYFrameEncoder()
        var decoder = SPDYFrameDecoder()
        var wire = ByteBuffer()
        for frame in Self.sampleFrames { try encoder.encode(frame, into: &wire) }
        #expect(try decoder.decodeAll(wire) == Self.sampleFrames)
    }

    @Test("fixed frames are byte-exact: §9.1's RST, GOAWAY and PING, §9.3's WINDOW_UPDATE and SETTINGS")
    func exactBytes() throws {
        var encoder = SPDYFrameEncoder()
        let cases: [(SPDYFrame, String)] = [
            (
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(7), status: .cancel)),
                "80030003000000080000000700000005"
            ),
            (
                .goAway(SPDYGoAwayFrame(lastGoodStreamID: SPDYStreamID(7), status: .ok)),
                "80030007000000080000000700000000"
            ),
            (.ping(SPDYPingFrame(id: 1)), "800300060000000400000001"),
            (
                .windowUpdate(SPDYWindowUpdateFrame(streamID: SPDYStreamID(3), deltaWindowSize: 65536)),
                "80030009000000080000000300010000"
            ),
            (
                .settings(SPDYSettingsFrame(entries: [.init(id: .initialWindowSize, value: 65536)])),
                "800300040000000c000000010000000700010000"
            ),
            (.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: ByteBuffer(), isFin: true)), "0000000101000000"),
            (
                .data(
                    SPDYDataFrame(streamID: SPDYStreamID(7), data: ByteBuffer(string: "{\"Width\":80,\"Height\":24}\n"))
                ),
                "00000007000000197b225769647468223a38302c22486569676874223a32347d0a"
            ),
        ]
        for (frame, hex) in cases {
            var buffer = ByteBuffer()
            try encoder.encode(frame, into: &buffer)
            #expect(buffer.hex == hex)
        }
    }

    @Test(
        "an empty SYN_REPLY still carries a compressed block; the first starts with a zlib header and DICTID, all end 00 00 ff ff"
    )
    func emptyReplyBlock() throws {
        var encoder = SPDYFrameEncoder()
        var first = ByteBuffer()
        try encoder.encode(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1))), into: &first)
        #expect(first.readableBytes > 12)
        // CMF: deflate (low nibble 8) with the compact 2 KiB window (CINFO 3); Go accepts any CINFO up to 7.
        #expect(first.getInteger(at: 12, as: UInt8.self) == 0x38)
        #expect(first.getSlice(at: 14, length: 4)!.hex == "e3c6a7c2")
        #expect(first.hex.hasSuffix("0000ffff"))
        var second = ByteBuffer()
        try encoder.encode(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(3))), into: &second)
        #expect(second.getSlice(at: 12, length: 1)!.hex != "78")
        #expect(second.hex.hasSuffix("0000ffff"))
    }

    @Test("the encoder refuses what would kill a Go peer, and appends nothing when it does")
    func strictOutput() throws {
        var encoder = SPDYFrameEncoder()
        let bad: [(SPDYFrame, SPDYError.Kind)] = [
            (
                .synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["StreamType": "x"])),
                .invalidHeaderName
            ),
            (.synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["": "x"])), .invalidHeaderName),
            (.synStream(SPDYSynStreamFrame(streamID: SPDYStreamID(1), headers: ["host": "x"])), .forbiddenHeader),
            (.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1), headers: ["connection": "x"])), .forbiddenHeader),
            (
                .synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1), headers: ["a": "x", "a": "y"])),
                .invalidHeaderValue
            ),
            (.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1), headers: ["a": "\u{0}x"])), .invalidHeaderValue),
            (
                .synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1), headers: ["a": "x\u{0}\u{0}y"])),
                .invalidHeaderValue
            ),
            (.synReply(SPDYSynReplyFrame(streamID: .none)), .invalidStreamID),
            (.data(SPDYDataFrame(streamID: .none, data: ByteBuffer())), .invalidStreamID),
            (
                .rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(1), status: SPDYStreamStatus(rawValue: 0))),
                .malformedFrame
            ),
            (.ping(SPDYPingFrame(id: 0)), .malformedFrame),
            (.windowUpdate(SPDYWindowUpdateFrame(streamID: SPDYStreamID(1), deltaWindowSize: 0)), .malformedFrame),
        ]
        for (frame, kind) in bad {
            var buffer = ByteBuffer(string: "keep")
            let error = #expect(throws: SPDYError.self) { try encoder.encode(frame, into: &buffer) }
            #expect(error?.kind == kind, "\(frame)")
            #expect(buffer == ByteBuffer(string: "keep"))
        }
        // The deflate context was never touched by the refused frames: a later block still decodes.
        var decoder = SPDYFrameDecoder()
        var buffer = ByteBuffer()
        try encoder.encode(.synReply(SPDYSynReplyFrame(streamID: SPDYStreamID(1), headers: ["a": "b"])), into: &buffer)
        #expect(try decoder.decodeAll(buffer).count == 1)
    }

    @Test("DATA payloads are slices of the input: the decoder copies no payload bytes")
    func zeroCopyData() throws {
        var wire = ByteBuffer()
        var encoder = SPDYFrameEncoder()
        for index in 0..<4 {
            let payload = ByteBuffer(repeating: UInt8(index), count: 32 * 1024)
            try encoder.encode(.data(SPDYDataFrame(streamID: SPDYStreamID(1), data: payload)), into: &wire)
        }
        var decoder = SPDYFrameDecoder()
        let frames = try decoder.decodeAll(wire)
        let base = wire.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        for (index, frame) in frames.enumerated() {
            guard case .data(let data) = frame else { continue }
            let address = data.data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(address == base + UInt(8 + index * (8 + 32 * 1024)))
        }
    }
}

@Suite("Decoder framing rules")
struct FrameDecoderRuleTests {
    static func decodeError(_ hex: String, limits: SPDYLimits = .default) throws -> SPDYError? {
        var decoder = SPDYFrameDecoder(limits: limits)
        return #expect(throws: SPDYError.self) { try decoder.decodeAll(ByteBuffer(hex: hex)) }
    }

    @Test("only version 3 is accepted, checked as soon as the 8-byte header arrives")
    func version() throws {
        #expect(try Self.decodeError("800200060000000400000001")?.kind == .unsupportedVersion)
        #expect(try Self.decodeError("80020006000000ff")?.kind == .unsupportedVersion)
    }

    @Test("unknown control types (NOOP 5, CREDENTIAL 10, 0xffff) are refused")
    func unknownTypes() throws {
        for type in ["0005", "000a", "ffff", "0000"] {
            #expect(try Self.decodeError("8003\(type)0000000400000001")?.kind == .unknownFrameType)
        }
    }

    @Test("fixed-size frames need their exact length")
    func exactLengths() throws {
        #expect(try Self.decodeError("80030003000000090000000100000005ff")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("800300060000000800000001")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("8003000700000004")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("80030009000000070000000100000000")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("800300010000000900000001")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("8003000200000003")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("800300040000000c000000020000000700010000")?.kind == .invalidFrameLength)
        #expect(try Self.decodeError("8003000400000005")?.kind == .invalidFrameLength)
    }

    @Test("stream id 0 is refused on every stream frame")
    func streamZero() throws {
        #expect(try Self.decodeError("0000000000000000")?.kind == .invalidStreamID)
        #expect(try Self.decodeError("80030003000000080000000000000005")?.kind == .invalidStreamID)
        #expect(try Self.decodeError("800300020000000c00000000026100000000ffff")?.kind == .invalidStreamID)
    }

    @Test("undefined flags, RST status 0, PING id 0 and WINDOW_UPDATE delta 0 are refused")
    func fieldRules() throws {
        #expect(try Self.decodeError("0000000102000000")?.kind == .invalidFlags)
        #expect(try Self.decodeError("800300060100000400000001")?.kind == .invalidFlags)
        #expect(try Self.decodeError("80030003010000080000000100000005")?.kind == .invalidFlags)
        #expect(try Self.decodeError("80030003000000080000000100000000")?.kind == .malformedFrame)
        #expect(try Self.decodeError("800300060000000400000000")?.kind == .malformedFrame)
        #expect(try Self.decodeError("80030009000000080000000180000000")?.kind == .malformedFrame)
    }

    @Test("reserved bits of stream ids are masked on read")
    func reservedBits() throws {
        var decoder = SPDYFrameDecoder()
        let frames = try decoder.decodeAll(ByteBuffer(hex: "80030003000000088000000100000005"))
        #expect(frames == [.rstStream(SPDYRstStreamFrame(streamID: SPDYStreamID(1), status: .cancel))])
    }

    @Test("an incomplete frame yields nothing and waits for the rest")
    func incomplete() throws {
        var decoder = SPDYFrameDecoder()
        #expect(try decoder.decodeAll(ByteBuffer(hex: "000000030000")) == [])
        #expect(try decoder.decodeAll(ByteBuffer(hex: "0004616263")) == [])
        #expect(decoder.bufferedBytes == 11)
        #expect(
            try decoder.decodeAll(ByteBuffer(hex: "64"))
                == [.data(SPDYDataFrame(streamID: SPDYStreamID(3), data: ByteBuffer(string: "abcd")))])
        #expect(decoder.bufferedBytes == 0)
    }
}

@Suite("Limits, tested on both sides")
struct LimitTests {
    @Test("maxDataFramePayload: a DATA frame of exactly the limit passes, one byte more fails before its payload")
    func dataLimit() throws {
        let limits = SPDYLimits(maxDataFramePayload: 1000)
        var atLimit = ByteBuffer()
        atLimit.writeMultipleIntegers(UInt32(1), UInt32(1000))
        atLimit.writeRepeatingByte(7, count: 1000)
        var decoder = SPDYFrameDecoder(limits: limits)
        #expect(try decoder.decodeAll(atLimit).count == 1)
        var decoder2 = SPDYFrameDecoder(limits: limits)
        let error = #expect(throws: SPDYError.self) { try decoder2.decodeAll(ByteBuffer(hex: "00000001000003e9")) }
        #expect(error?.kind == .dataFrameTooLarge)
        #expect(error?.wireAction == .goAway(.protocolError))
    }

    @Test("maxControlFramePayload: a SETTINGS frame of exactly the limit passes, one byte more fails")
    func controlLimit() throws {
        var payload = ByteBuffer()
        payload.writeInteger(UInt32(3))
        for id in 1...3 { payload.writeMultipleIntegers(UInt32(id), UInt32(0)) }
        let frame = controlFrame(type: 4, payload: payload)
        var decoder = SPDYFrameDecoder(limits: SPDYLimits(maxControlFramePayload: 28))
        #expect(try decoder.decodeAll(frame).count == 1)
        var decoder2 = SPDYFrameDecoder(limits: SPDYLimits(maxControlFramePayload: 27))
        let error = #expect(throws: SPDYError.self) { try decoder2.decodeAll(frame.getSlice(at: 0, length: 8)!) }
        #expect(error?.kind == .controlFrameTooLarge)
    }

    @Test("maxCompressedHeaderBlock: a block of exactly the limit passes, one byte more fails")
    func compressedBlockLimit() throws {
        let frame = ByteBuffer(hex: "80030002000000140000000178f9e3c6a7c26260606000000000ffff")
        let blockLength = 0x14 - 4
        var decoder = SPDYFrameDecoder(limits: SPDYLimits(maxCompressedHeaderBlock: blockLength))
        #expect(try decoder.decodeAll(frame).count == 1)
        var decoder2 = SPDYFrameDecoder(limits: SPDYLimits(maxCompressedHeaderBlock: blockLength - 1))
        let error = #expect(throws: SPDYError.self) { try decoder2.decodeAll(frame) }
        #expect(error?.kind == .headerBlockTooLarge)
        #expect(error?.wireAction == .goAway(.protocolError))
    }

    @Test("maxDecompressedHeaderBlock: a block inflating to exactly the limit passes, one byte more is a zlib bomb")
    func decompressedLimit() throws {
        let value = String(repeating: "a", count: 5000)
        let plain = rawHeaderBlock([("x", value)])
        #expect(plain.readableBytes == 13 + 5000)
        for (limit, passes) in [(5013, true), (5012, false)] {
            let frame = try synStreamFrame(id: 1, plain: plain, deflater: SPDYHeaderDeflater())
            #expect(frame.readableBytes < 200)
            var decoder = SPDYFrameDecoder(limits: SPDYLimits(maxDecompressedHeaderBlock: limit))
            if passes {
                #expect(try decoder.decodeAll(frame).count == 1)
            } else {
                let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(frame) }
                #expect(error?.kind == .decompressedHeaderBlockTooLarge)
                #expect(error?.wireAction == .goAway(.protocolError))
            }
        }
    }

    @Test("a 16 MiB zlib bomb inside a small frame stops at the default 256 KiB")
    func bomb() throws {
        let plain = rawHeaderBlock([("x", String(repeating: "a", count: 16 << 20))])
        let frame = try synStreamFrame(id: 1, plain: plain, deflater: SPDYHeaderDeflater())
        #expect(frame.readableBytes < 32 << 10)
        var decoder = SPDYFrameDecoder()
        let error = #expect(throws: SPDYError.self) { try decoder.decodeAll(frame) }
        #expect(error?.kind == .decompressedHeaderBlockTooLarge)
    }
}
