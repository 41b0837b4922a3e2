import NIOCore

/// Decodes SPDY/3 frames from bytes: a pure value with no I/O (protocols.md §1).
///
/// Feed bytes with ``append(_:)`` and pull frames with ``nextFrame()`` until it returns `nil`.
/// DATA payloads are slices of the appended buffers, never copies. Header blocks are inflated with
/// the decoder's own zlib context, which persists across frames (§1.4): a decoder is one direction
/// of one connection, and copies of a decoder share that context, so keep exactly one.
///
/// Validation is strict: version 3 only, exact lengths for fixed-size frames, no undefined flags,
/// no stream id 0 where a stream is needed, every compressed byte consumed, and the limits of
/// ``SPDYLimits``. Every error it throws is a session error; after one, the decoder keeps throwing it.
public struct SPDYFrameDecoder {
    public let limits: SPDYLimits
    private let inflater: SPDYHeaderInflater
    /// The bytes being decoded.
    private var input = ByteBuffer()
    /// Later input, kept as received; bytes move into `input` only when a frame spans two buffers.
    private var queued: [ByteBuffer] = []
    private var failure: SPDYError?

    public init(limits: SPDYLimits = .default) {
        self.limits = limits
        self.inflater = SPDYHeaderInflater()
    }

    /// Adds received bytes. They are not copied: only a frame that straddles two appended buffers is
    /// gathered into one contiguous buffer, so DATA payloads can be handed out as slices.
    public mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        if input.readableBytes == 0, queued.isEmpty {
            input = bytes
        } else {
            queued.append(bytes)
        }
    }

    /// Bytes appended but not yet decoded.
    public var bufferedBytes: Int { queued.reduce(input.readableBytes) { $0 + $1.readableBytes } }

    /// The next complete frame, or `nil` when more bytes are needed.
    public mutating func nextFrame() throws(SPDYError) -> SPDYFrame? {
        if let failure { throw failure }
        while true {
            do throws(SPDYError) {
                if let frame = try Self.decode(&input, limits: limits, inflater: inflater) { return frame }
            } catch {
                failure = error
                throw error
            }
            guard !queued.isEmpty else { return nil }
            gatherNextFrame()
        }
    }

    /// Moves queued bytes into `input`: a whole buffer when `input` is used up, otherwise just enough to
    /// complete the frame (or its 8-byte header) that `input` ends with.
    private mutating func gatherNextFrame() {
        if input.readableBytes == 0 {
            input = queued.removeFirst()
            return
        }
        var needed = 8
        if let word1 = input.getInteger(at: input.readerIndex + 4, as: UInt32.self) {
            needed = 8 + Int(word1 & 0x00FF_FFFF)  // already checked against the limits by decodeFrame
        }
        var gathered = ByteBufferAllocator().buffer(capacity: needed)
        gathered.writeBuffer(&input)
        while gathered.readableBytes < needed, !queued.isEmpty {
            var next = queued.removeFirst()
            var part = next.readSlice(length: min(needed - gathered.readableBytes, next.readableBytes))!
            gathered.writeBuffer(&part)
            if next.readableBytes > 0 { queued.insert(next, at: 0) }
        }
        input = gathered
    }

    /// Decodes one frame from the front of `buffer`, consuming it; leaves `buffer` untouched and returns
    /// `nil` when the frame is incomplete. Shared by ``nextFrame()`` and the NIO decoder handler.
    mutating func decodeFrame(from buffer: inout ByteBuffer) throws(SPDYError) -> SPDYFrame? {
        if let failure { throw failure }
        do throws(SPDYError) {
            return try Self.decode(&buffer, limits: limits, inflater: inflater)
        } catch {
            failure = error
            throw error
        }
    }

    private static func decode(
        _ buffer: inout ByteBuffer, limits: SPDYLimits, inflater: SPDYHeaderInflater
    )
        throws(SPDYError) -> SPDYFrame?
    {
        guard let word0 = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let word1 = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)
        else { return nil }
        let flags = UInt8(word1 >> 24)
        let length = Int(word1 & 0x00FF_FFFF)

        guard word0 & 0x8000_0000 != 0 else {
            let streamID = SPDYStreamID(rawValue: word0)
            guard streamID != .none else { throw SPDYError(.invalidStreamID, "DATA frame on stream 0") }
            guard length <= limits.maxDataFramePayload else {
                throw SPDYError(
                    .dataFrameTooLarge, "DATA frame of \(length) bytes exceeds \(limits.maxDataFramePayload)",
                    streamID: streamID)
            }
            guard flags & ~SPDYFlags.fin.rawValue == 0 else {
                throw SPDYError(.invalidFlags, "DATA frame with flags \(flags)", streamID: streamID)
            }
            guard buffer.readableBytes >= 8 + length else { return nil }
            buffer.moveReaderIndex(forwardBy: 8)
            let data = buffer.readSlice(length: length)!
            return .data(SPDYDataFrame(streamID: streamID, data: data, isFin: flags != 0))
        }

        let version = (word0 >> 16) & 0x7FFF
        let type = SPDYFrameType(rawValue: UInt16(word0 & 0xFFFF))
        guard version == 3 else { throw SPDYError(.unsupportedVersion, "control frame of version \(version)") }
        guard length <= limits.maxControlFramePayload else {
            throw SPDYError(
                .controlFrameTooLarge, "\(type) of \(length) bytes exceeds \(limits.maxControlFramePayload)")
        }
        try Self.checkLengthAndFlags(type: type, length: length, flags: flags, limits: limits)
        guard buffer.readableBytes >= 8 + length else { return nil }
        buffer.moveReaderIndex(forwardBy: 8)
        var payload = buffer.readSlice(length: length)!
        return try decodeControlPayload(
            type: type, flags: SPDYFlags(rawValue: flags), payload: &payload, limits: limits, inflater: inflater)
    }

    /// Checks what the 8-byte header alone can tell, so a bad frame is refused before its payload arrives.
    private static func checkLengthAndFlags(
        type: SPDYFrameType, length: Int, flags: UInt8, limits: SPDYLimits
    )
        throws(SPDYError)
    {
        let allowedFlags: UInt8
        let fixedPart: Int
        var exact = false
        switch type {
        case .synStream: (allowedFlags, fixedPart) = (0x03, 10)
        case .synReply, .headers: (allowedFlags, fixedPart) = (0x01, 4)
        case .rstStream, .goAway, .windowUpdate: (allowedFlags, fixedPart, exact) = (0, 8, true)
        case .ping: (allowedFlags, fixedPart, exact) = (0, 4, true)
        case .settings: (allowedFlags, fixedPart) = (0x01, 4)
        default: throw SPDYError(.unknownFrameType, "unknown control frame \(type)")
        }
        guard exact ? length == fixedPart : length >= fixedPart else {
            throw SPDYError(.invalidFrameLength, "\(type) with a payload of \(length) bytes")
        }
        guard flags & ~allowedFlags == 0 else {
            throw SPDYError(.invalidFlags, "\(type) with flags \(flags)")
        }
        if type == .synStream || type == .synReply || type == .headers {
            guard length - fixedPart <= limits.maxCompressedHeaderBlock else {
                throw SPDYError(
                    .headerBlockTooLarge,
                    "\(type) header block of \(length - fixedPart) bytes exceeds \(limits.maxCompressedHeaderBlock)")
            }
        }
        if type == .settings, (length - 4) % 8 != 0 {
            throw SPDYError(.invalidFrameLength, "SETTINGS with a payload of \(length) bytes")
        }
    }

    private static func decodeControlPayload(
        type: SPDYFrameType, flags: SPDYFlags, payload: inout ByteBuffer, limits: SPDYLimits,
        inflater: SPDYHeaderInflater
    ) throws(SPDYError) -> SPDYFrame {
        let isFin = flags.contains(.fin)
        switch type {
        case .synStream:
            let streamID = try readStreamID(&payload, type)
            let associated = SPDYStreamID(rawValue: payload.readInteger(as: UInt32.self)!)
            let priority = payload.readInteger(as: UInt8.self)! >> 5
            let slot = payload.readInteger(as: UInt8.self)!
            let headers = try readHeaderBlock(
                payload, type: type, streamID: streamID, limits: limits, inflater: inflater)
            return .synStream(
                SPDYSynStreamFrame(
                    streamID: streamID, headers: headers, isFin: isFin,
                    isUnidirectional: flags.contains(.unidirectional), associatedStreamID: associated,
                    priority: priority, slot: slot))
        case .synReply:
            let streamID = try readStreamID(&payload, type)
            let headers = try readHeaderBlock(
                payload, type: type, streamID: streamID, limits: limits, inflater: inflater)
            return .synReply(SPDYSynReplyFrame(streamID: streamID, headers: headers, isFin: isFin))
        case .headers:
            let streamID = try readStreamID(&payload, type)
            let headers = try readHeaderBlock(
                payload, type: type, streamID: streamID, limits: limits, inflater: inflater)
            return .headers(SPDYHeadersFrame(streamID: streamID, headers: headers, isFin: isFin))
        case .rstStream:
            let streamID = try readStreamID(&payload, type)
            let status = SPDYStreamStatus(rawValue: payload.readInteger(as: UInt32.self)!)
            guard status.rawValue != 0 else {
                throw SPDYError(.malformedFrame, "RST_STREAM with status 0", streamID: streamID)
            }
            return .rstStream(SPDYRstStreamFrame(streamID: streamID, status: status))
        case .settings:
            let count = Int(payload.readInteger(as: UInt32.self)!)
            guard count * 8 == payload.readableBytes else {
                throw SPDYError(
                    .invalidFrameLength, "SETTINGS announces \(count) entries in \(payload.readableBytes) bytes")
            }
            var entries: [SPDYSettingsFrame.Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let word = payload.readInteger(as: UInt32.self)!
                let value = payload.readInteger(as: UInt32.self)!
                entries.append(
                    .init(
                        id: SPDYSettingID(rawValue: word & 0x00FF_FFFF), value: value,
                        flags: SPDYSettingFlags(rawValue: UInt8(word >> 24))))
            }
            return .settings(SPDYSettingsFrame(entries: entries, clearSettings: flags.contains(.clearSettings)))
        case .ping:
            let id = payload.readInteger(as: UInt32.self)!
            guard id != 0 else { throw SPDYError(.malformedFrame, "PING with id 0") }
            return .ping(SPDYPingFrame(id: id))
        case .goAway:
            let lastGood = SPDYStreamID(rawValue: payload.readInteger(as: UInt32.self)!)
            let status = SPDYGoAwayStatus(rawValue: payload.readInteger(as: UInt32.self)!)
            return .goAway(SPDYGoAwayFrame(lastGoodStreamID: lastGood, status: status))
        case .windowUpdate:
            let streamID = SPDYStreamID(rawValue: payload.readInteger(as: UInt32.self)!)
            let delta = payload.readInteger(as: UInt32.self)! & 0x7FFF_FFFF
            guard delta != 0 else { throw SPDYError(.malformedFrame, "WINDOW_UPDATE with delta 0") }
            return .windowUpdate(SPDYWindowUpdateFrame(streamID: streamID, deltaWindowSize: delta))
        default:
            throw SPDYError(.unknownFrameType, "unknown control frame \(type)")
        }
    }

    private static func readStreamID(
        _ payload: inout ByteBuffer, _ type: SPDYFrameType
    ) throws(SPDYError) -> SPDYStreamID {
        let streamID = SPDYStreamID(rawValue: payload.readInteger(as: UInt32.self)!)
        guard streamID != .none else { throw SPDYError(.invalidStreamID, "\(type) on stream 0") }
        return streamID
    }

    /// Inflates and parses a header block. It runs for every block, even of a stream about to be
    /// refused: skipping one would desynchronise the shared zlib context (§1.4).
    private static func readHeaderBlock(
        _ compressed: ByteBuffer, type: SPDYFrameType, streamID: SPDYStreamID, limits: SPDYLimits,
        inflater: SPDYHeaderInflater
    ) throws(SPDYError) -> SPDYHeaders {
        var block: ByteBuffer
        do {
            block = try inflater.decompress(compressed, maxOutput: limits.maxDecompressedHeaderBlock)
        } catch {
            var error = error
            error.streamID = streamID
            throw error
        }
        return try SPDYHeaders.parse(block: block, frameType: type, streamID: streamID)
    }
}
