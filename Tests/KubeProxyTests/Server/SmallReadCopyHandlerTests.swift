import NIOCore
import NIOEmbedded
import Testing

@testable import KubeProxy

@Suite("Copying small reads out of the TLS read buffer")
struct SmallReadCopyHandlerTests {
    @Test("a small read arrives in a buffer of its own size; the 32 KiB one it came in is left unshared")
    func smallReadIsCopied() throws {
        let channel = EmbeddedChannel(handler: SmallReadCopyHandler())
        var tlsBuffer = ByteBuffer()
        tlsBuffer.reserveCapacity(32 << 10)
        tlsBuffer.writeString("GET / HTTP/1.1\r\n\r\n")
        try channel.writeInbound(tlsBuffer)
        let read = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(read == tlsBuffer)
        #expect(read.capacity < 1024, "copied into its own storage, not a slice of 32 KiB")
        #expect(try channel.finish().isClean)
    }

    @Test("reads above the limit pass through untouched, at the limit they are copied")
    func largeReadPassesThrough() throws {
        let channel = EmbeddedChannel(handler: SmallReadCopyHandler())
        var large = ByteBuffer()
        large.reserveCapacity(32 << 10)
        large.writeRepeatingByte(0x61, count: SmallReadCopyHandler.copyLimit + 1)
        try channel.writeInbound(large)
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(passed == large)
        #expect(passed.capacity >= 32 << 10, "the same storage")
        let atLimit = large.getSlice(at: 0, length: SmallReadCopyHandler.copyLimit)!
        try channel.writeInbound(atLimit)
        let copied = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(copied == atLimit)
        #expect(copied.capacity < 32 << 10)
        #expect(try channel.finish().isClean)
    }
}
