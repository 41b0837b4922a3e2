import NIOCore

/// Encodes SPDY/3 frames into bytes: a pure value with no I/O (protocols.md §1).
///
/// Header blocks are compressed with the encoder's own deflate context, one per connection and
/// direction, continued across frames (§1.4). Encode frames in exactly the order they are sent:
/// a block compressed but never sent would desynchronise the peer. Copies of an encoder share the
/// context, so keep exactly one.
///
/// The encoder is strict on output (§1.9): lower-case names only, no connection headers, no
/// empty NUL-separated values, no stream id 0, lengths that fit the 24-bit field.
public struct SPDYFrameEncoder {
    private let deflater: SPDYHeaderDeflater

    public init(compression: SPDYHeaderCompressionParameters = .compact) {
        deflater = SPDYHeaderDeflater(parameters: compression)
    }

    /// Appends `frame` to `buffer`. On error nothing is appended, and if the error is
    /// ``SPDYError/Kind/headerCompressionFailed`` the encoder is unusable.
    public mutating func encode(_ frame: SPDYFrame, into buffer: inout ByteBuffer) throws(SPDYError) {
        let start = buffer.writerIndex
        do throws(SPDYError) {
            try encodeFrame(frame, into: &buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            throw error
        }
    }

    /// Writes only the 8-byte header of a DATA frame, for callers that send the payload separately
    /// (vectored writes avoid copying it).
    public static func encodeDataFrameHeader(
        streamID: SPDYStreamID, length: Int, isFin: Bool, into buffer: inout ByteBuffer
    ) throws(SPDYError) {
        guard streamID != .none else { throw SPDYError(.invalidStreamID, "cannot send DATA on stream 0") }
        guard length <= SPDYLimits.wireMaximumPayload else {
            throw SPDYError(.dataFrameTooLarge, "a DATA frame holds at most 16 MiB − 1, not \(length) bytes")
        }
        buffer.writeMultipleIntegers(
            streamID.rawValue, UInt32(isFin ? 0x0100_0000 : 0) | UInt32(length))
    }

    private func encodeFrame(_ frame: SPDYFrame, into buffer: inout ByteBuffer) throws(SPDYError) {
        switch frame {
        case .data(let data):
            try Self.encodeDataFrameHeader(
                streamID: data.streamID, length: data.data.readableBytes, isFin: data.isFin, into: &buffer)
            buffer.writeImmutableBuffer(data.data)
        case .synStream(let syn):
            try requireStream(syn.streamID, .synStream)
            try syn.headers.validateForSending(frameType: .synStream)
            var flags = syn.isFin ? SPDYFlags.fin : []
            if syn.isUnidirectional { flags.insert(.unidirectional) }
            try writeControlFrame(.synStream, flags: flags, into: &buffer) { payload throws(SPDYError) in
                payload.writeMultipleIntegers(
                    syn.streamID.rawValue, syn.associatedStreamID.rawValue, (syn.priority & 0x07) << 5, syn.slot)
                try compress(syn.headers, into: &payload)
            }
        case .synReply(let reply):
            try requireStream(reply.streamID, .synReply)
            try reply.headers.validateForSending(frameType: .synReply)
            try writeControlFrame(.synReply, flags: reply.isFin ? .fin : [], into: &buffer) {
                payload throws(SPDYError) in
                payload.writeInteger(reply.streamID.rawValue)
                try compress(reply.headers, into: &payload)
            }
        case .headers(let headers):
            try requireStream(headers.streamID, .headers)
            try headers.headers.validateForSending(frameType: .headers)
            try writeControlFrame(.headers, flags: headers.isFin ? .fin : [], into: &buffer) {
                payload throws(SPDYError) in
                payload.writeInteger(headers.streamID.rawValue)
                try compress(headers.headers, into: &payload)
            }
        case .rstStream(let rst):
            try requireStream(rst.streamID, .rstStream)
            guard rst.status.rawValue != 0 else { throw SPDYError(.malformedFrame, "RST_STREAM status 0") }
            try writeControlFrame(.rstStream, flags: [], into: &buffer) { payload in
                payload.writeMultipleIntegers(rst.streamID.rawValue, rst.status.rawValue)
            }
        case .settings(let settings):
            try writeControlFrame(.settings, flags: settings.clearSettings ? .clearSettings : [], into: &buffer) {
                payload in
                payload.writeInteger(UInt32(settings.entries.count))
                for entry in settings.entries {
                    payload.writeMultipleIntegers(
                        UInt32(entry.flags.rawValue) << 24 | entry.id.rawValue, entry.value)
                }
            }
        case .ping(let ping):
            guard ping.id != 0 else { throw SPDYError(.malformedFrame, "PING id 0") }
            try writeControlFrame(.ping, flags: [], into: &buffer) { payload in payload.writeInteger(ping.id) }
        case .goAway(let goAway):
            try writeControlFrame(.goAway, flags: [], into: &buffer) { payload in
                payload.writeMultipleIntegers(goAway.lastGoodStreamID.rawValue, goAway.status.rawValue)
            }
        case .windowUpdate(let update):
            guard update.deltaWindowSize != 0, update.deltaWindowSize <= 0x7FFF_FFFF else {
                throw SPDYError(.malformedFrame, "WINDOW_UPDATE delta \(update.deltaWindowSize)")
            }
            try writeControlFrame(.windowUpdate, flags: [], into: &buffer) { payload in
                payload.writeMultipleIntegers(update.streamID.rawValue, update.deltaWindowSize)
            }
        }
    }

    private func requireStream(_ streamID: SPDYStreamID, _ type: SPDYFrameType) throws(SPDYError) {
        guard streamID != .none else { throw SPDYError(.invalidStreamID, "cannot send \(type) on stream 0") }
    }

    private func compress(_ headers: SPDYHeaders, into payload: inout ByteBuffer) throws(SPDYError) {
        var plain = ByteBufferAllocator().buffer(capacity: headers.encodedLength)
        headers.write(to: &plain)
        try deflater.compress(plain, into: &payload)
    }

    /// Writes `80 03 <type> <flags> <length>` and the payload, patching the length afterwards.
    private func writeControlFrame(
        _ type: SPDYFrameType, flags: SPDYFlags, into buffer: inout ByteBuffer,
        payload write: (inout ByteBuffer) throws(SPDYError) -> Void
    ) throws(SPDYError) {
        let start = buffer.writerIndex
        buffer.writeMultipleIntegers(UInt16(0x8003), type.rawValue, UInt32(0))
        try write(&buffer)
        let length = buffer.writerIndex - start - 8
        guard length <= SPDYLimits.wireMaximumPayload else {
            throw SPDYError(.controlFrameTooLarge, "\(type) payload of \(length) bytes does not fit 24 bits")
        }
        buffer.setInteger(UInt32(flags.rawValue) << 24 | UInt32(length), at: start + 4)
    }
}
