import Dispatch
import NIOCore
import Synchronization
import Testing

@testable import KubeProxy

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Connection buffer pool")
struct ConnectionBufferPoolTests {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Pages of `[pointer, pointer + count)` in memory, from the kernel (`mincore`).
    static func residentPages(_ pointer: UnsafeMutableRawPointer, count: Int) -> Int {
        let pages = (count + pageSize - 1) / pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        let result = mincore(pointer, count, &vector)
        precondition(result == 0, "mincore failed: \(errno)")
        return vector.filter { $0 & 1 == 1 }.count
    }

    @Test("requests of more than 8 and up to 64 KiB get page-aligned slots; others malloc's memory")
    func classes() {
        let pool = ConnectionBufferPool(reservation: 1 << 20, warmLimit: 2)
        for (size, pooled) in [
            (100, false), (8192, false), (8193, true), (16384, true), (20000, true), (65536, true), (65537, false),
        ] {
            let pointer = pool.allocate(size)!
            #expect(pool.owns(pointer) == pooled, "\(size) bytes")
            if pooled { #expect(Int(bitPattern: pointer) % Self.pageSize == 0, "\(size) bytes") }
            pointer.initializeMemory(as: UInt8.self, repeating: 0xAB, count: size)
            pool.deallocate(pointer)
        }
    }

    @Test("a fresh slot costs only the pages written")
    func freshSlot() {
        let pool = ConnectionBufferPool(reservation: 1 << 20, warmLimit: 2)
        let pointer = pool.allocate(64 << 10)!
        #expect(Self.residentPages(pointer, count: 64 << 10) == 0)
        pointer.storeBytes(of: 1, as: UInt8.self)
        #expect(Self.residentPages(pointer, count: 64 << 10) == 1)
        pool.deallocate(pointer)
    }

    @Test("freed slots beyond the warm limit give their pages back; warm ones are taken first")
    func warmAndCold() {
        let size = 32 << 10
        let pool = ConnectionBufferPool(reservation: 1 << 20, warmLimit: 2)
        let slots = (0..<4).map { index -> UnsafeMutableRawPointer in
            let pointer = pool.allocate(size)!
            pointer.initializeMemory(as: UInt8.self, repeating: UInt8(index + 1), count: size)
            return pointer
        }
        for slot in slots { #expect(Self.residentPages(slot, count: size) == size / Self.pageSize) }
        for slot in slots { pool.deallocate(slot) }
        #expect(pool.freeSlots(size: size) == (warm: 2, cold: 2))
        #expect(Self.residentPages(slots[0], count: size) == size / Self.pageSize)
        #expect(Self.residentPages(slots[1], count: size) == size / Self.pageSize)
        #expect(Self.residentPages(slots[2], count: size) == 0)
        #expect(Self.residentPages(slots[3], count: size) == 0)

        // The most recently freed warm slot comes back as it was; a cold one reads as zeros.
        let warm = pool.allocate(size)!
        #expect(warm == slots[1])
        #expect(warm.load(fromByteOffset: size - 1, as: UInt8.self) == 2)
        #expect(pool.allocate(size)! == slots[0])
        let cold = pool.allocate(size)!
        #expect(cold == slots[3])
        #expect(UnsafeRawBufferPointer(start: cold, count: size).allSatisfy { $0 == 0 })
        for slot in slots { pool.deallocate(slot) }
    }

    @Test("reallocation keeps the bytes, in the slot while they fit, then in a larger one or malloc's")
    func reallocation() {
        let pool = ConnectionBufferPool(reservation: 1 << 20, warmLimit: 2)
        let pattern = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        func holds(_ pointer: UnsafeMutableRawPointer, _ count: Int) -> Bool {
            pattern.withUnsafeBytes { memcmp(pointer, $0.baseAddress!, count) == 0 }
        }
        var pointer = pool.allocate(100)!
        pattern.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: 100) }

        pointer = pool.reallocate(pointer, oldSize: 100, newSize: 20_000)!
        #expect(pool.owns(pointer))
        #expect(holds(pointer, 100))
        pattern.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: 20_000) }

        let same = pool.reallocate(pointer, oldSize: 20_000, newSize: 32_768)!
        #expect(same == pointer, "32 KiB fits the slot 20,000 bytes took")

        pointer = pool.reallocate(same, oldSize: 32_768, newSize: 60_000)!
        #expect(pointer != same && pool.owns(pointer))
        #expect(holds(pointer, 20_000))
        pattern.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: 60_000) }

        pointer = pool.reallocate(pointer, oldSize: 60_000, newSize: 100_000)!
        #expect(!pool.owns(pointer))
        #expect(holds(pointer, 60_000))
        pool.deallocate(pointer)
        #expect(pool.freeSlots(size: 32_768).warm == 1 && pool.freeSlots(size: 65_536).warm == 1)
    }

    @Test("a class whose slots are all taken, or a pool without its reservation, uses malloc")
    func exhaustion() {
        let pool = ConnectionBufferPool(reservation: 64 << 10, warmLimit: 2)
        #expect(pool.slotCounts == [4, 2, 1])
        let first = pool.allocate(65_536)!
        let second = pool.allocate(65_536)!
        #expect(pool.owns(first) && !pool.owns(second))
        second.initializeMemory(as: UInt8.self, repeating: 9, count: 65_536)
        let grown = pool.reallocate(second, oldSize: 65_536, newSize: 65_536)!
        #expect(!pool.owns(grown) && grown.load(fromByteOffset: 65_535, as: UInt8.self) == 9)
        pool.deallocate(grown)
        pool.deallocate(first)
        #expect(pool.allocate(65_536)! == first)
        pool.deallocate(first)

        let unreserved = ConnectionBufferPool(reservation: 0)
        #expect(unreserved.slotCounts == [0, 0, 0])
        let pointer = unreserved.allocate(32_768)!
        #expect(!unreserved.owns(pointer))
        unreserved.deallocate(pointer)
    }

    @Test("threads taking and freeing slots at once never share one")
    func concurrency() {
        let pool = ConnectionBufferPool(reservation: 1 << 20, warmLimit: 3)
        let sizes = [9000, 16_384, 32_768, 65_536, 40_000]
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var held: [(UnsafeMutableRawPointer, Int, UInt8)] = []
            for round in 0..<3000 {
                let size = sizes[(round + thread) % sizes.count]
                let mark = UInt8(truncatingIfNeeded: thread * 61 + round)
                let pointer = pool.allocate(size)!
                pointer.storeBytes(of: mark, as: UInt8.self)
                pointer.storeBytes(of: mark, toByteOffset: size - 1, as: UInt8.self)
                held.append((pointer, size, mark))
                if held.count > 6 || round % 7 == 0 {
                    let (old, oldSize, oldMark) = held.removeFirst()
                    if old.load(as: UInt8.self) != oldMark
                        || old.load(fromByteOffset: oldSize - 1, as: UInt8.self) != oldMark
                    {
                        failures.withLock { $0 += 1 }
                    }
                    pool.deallocate(old)
                }
            }
            for (pointer, _, _) in held { pool.deallocate(pointer) }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test("ByteBuffers from the connection allocator live in the shared pool and keep their bytes")
    func byteBuffers() {
        let allocator = ByteBufferAllocator.connectionBuffers
        var buffer = allocator.buffer(capacity: 32 << 10)
        #expect(buffer.withVeryUnsafeBytes { ConnectionBufferPool.shared.owns($0.baseAddress!) })
        buffer.writeBytes((0..<30_000).map { UInt8(truncatingIfNeeded: $0) })
        var copy = buffer
        copy.setInteger(UInt8(0xFF), at: 0)  // copy on write: a second slot
        #expect(buffer.getInteger(at: 0, as: UInt8.self) == 0 && copy.getInteger(at: 0, as: UInt8.self) == 0xFF)
        #expect(copy.withVeryUnsafeBytes { ConnectionBufferPool.shared.owns($0.baseAddress!) })
        #expect(copy.getBytes(at: 1, length: 29_999) == buffer.getBytes(at: 1, length: 29_999))

        var small = allocator.buffer(capacity: 64)
        #expect(!small.withVeryUnsafeBytes { ConnectionBufferPool.shared.owns($0.baseAddress!) })
        small.writeBytes([UInt8](repeating: 7, count: 20_000))  // grows into a slot
        #expect(small.withVeryUnsafeBytes { ConnectionBufferPool.shared.owns($0.baseAddress!) })
        #expect(small.readableBytesView.allSatisfy { $0 == 7 } && small.readableBytes == 20_000)
    }
}
