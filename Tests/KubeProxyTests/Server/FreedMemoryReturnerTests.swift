import Foundation
import Testing

@testable import KubeProxy

@Suite("Returning freed memory to the system")
struct FreedMemoryReturnerTests {
    @Test("it trims only after a connection closed, once per close")
    func onlyAfterCloses() {
        let returner = FreedMemoryReturner()
        #expect(!returner.returnFreedMemoryIfConnectionsClosed())
        returner.connectionClosed()
        returner.connectionClosed()
        #expect(returner.returnFreedMemoryIfConnectionsClosed())
        #expect(!returner.returnFreedMemoryIfConnectionsClosed())
    }

    #if canImport(Glibc)
        @Test("freed 32 KiB buffers held between live allocations leave the resident set when it trims")
        func residentSetShrinks() throws {
            // Like closed connections' TLS buffers: free chunks in the middle of the heap, which free()
            // alone cannot give back. A small live block after each keeps them from merging into the top.
            let count = 2048
            var buffers: [UnsafeMutableRawPointer] = []
            var pins: [UnsafeMutableRawPointer] = []
            for _ in 0..<count {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 32 << 10, alignment: 16)
                buffer.initializeMemory(as: UInt8.self, repeating: 0xa5, count: 32 << 10)
                buffers.append(buffer)
                pins.append(UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16))
            }
            defer { pins.forEach { $0.deallocate() } }
            buffers.forEach { $0.deallocate() }
            let before = try Self.residentKiB()
            let returner = FreedMemoryReturner()
            returner.connectionClosed()
            #expect(returner.returnFreedMemoryIfConnectionsClosed())
            let after = try Self.residentKiB()
            // 64 MiB were freed; at least a quarter must have left (other tests allocate meanwhile).
            #expect(before - after > 16 << 10, "RSS \(before) KiB before, \(after) KiB after")
        }

        static func residentKiB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
    #endif
}
