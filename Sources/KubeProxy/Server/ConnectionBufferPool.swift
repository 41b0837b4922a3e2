@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the proxy's connections get their buffers of more than 8 and up to 64 KiB: NIOSSL's per-connection
/// plaintext (32 KiB) and ciphertext (16 KiB) buffers, and large socket reads.
///
/// An idle exec session keeps two TLS connections, and NIOSSL allocates those buffers when a
/// connection starts and keeps them while it lives, though an idle connection writes only their
/// first bytes. From malloc such a buffer is usually memory that other work (handshakes, parsing,
/// a closed connection) touched and freed, and glibc keeps freed memory resident, so every page of
/// it counts. Here each size class has page-aligned slots of its own in one reserved address
/// range, apart from the small allocations' churn: a fresh slot costs only the pages written, and
/// a slot freed while ``warmLimit`` of its class are already free gives its pages back to the
/// kernel (`MADV_DONTNEED`). The most recently freed slots keep their pages and are taken first,
/// so a bulk transfer, which frees and takes a buffer per read, makes no system call.
///
/// Requests outside the classes, and any once a class's slots are all taken, go to malloc.
final class ConnectionBufferPool: Sendable {
    /// The pool behind ``NIOCore/ByteBufferAllocator/connectionBuffers``.
    static let shared = ConnectionBufferPool()

    /// Slot sizes, smallest first: NIOSSL's ciphertext and plaintext buffers and NIO's largest
    /// socket read.
    static let classSizes = [16 << 10, 32 << 10, 64 << 10]
    /// Address space reserved per class (not memory: pages exist only once written).
    static let defaultReservation = 512 << 20
    /// Freed slots per class that keep their pages.
    static let defaultWarmLimit = 64

    let warmLimit: Int
    /// Slots per class, by class.
    let slotCounts: [Int]
    private let reservation: Int
    /// The reserved range's address (0: none, everything from malloc).
    private let base: UInt
    private let classes: [SlotClass]

    /// `reservation` is per class; a pool whose reservation fails serves everything from malloc.
    init(reservation: Int = defaultReservation, warmLimit: Int = defaultWarmLimit) {
        // Whole slots of every class, page-aligned (pages are at most 64 KiB).
        let reservation = reservation / Self.classSizes.last! * Self.classSizes.last!
        let mapped =
            reservation > 0
            ? mmap(
                nil, reservation * Self.classSizes.count, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : nil
        if let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) {
            // One byte written must cost one page, not a 2 MiB huge page.
            madvise(mapped, reservation * Self.classSizes.count, MADV_NOHUGEPAGE)
            base = UInt(bitPattern: mapped)
        } else {
            base = 0
        }
        let usable = base == 0 ? 0 : reservation
        self.reservation = usable
        self.warmLimit = max(0, warmLimit)
        classes = Self.classSizes.map { SlotClass(size: $0) }
        slotCounts = Self.classSizes.map { usable / $0 }
    }

    deinit {
        if let start = UnsafeMutableRawPointer(bitPattern: base) { munmap(start, reservation * classes.count) }
    }

    /// Memory for `size` bytes: a slot when a class fits it and has one left, else malloc's.
    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        takeSlot(size) ?? malloc(size)
    }

    /// `realloc` for memory from ``allocate(_:)``: a slot that still fits is kept; otherwise the
    /// bytes move (into a slot when one fits).
    func reallocate(_ pointer: UnsafeMutableRawPointer?, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(newSize) }
        if let (index, _) = slot(of: pointer) {
            if newSize <= classes[index].size { return pointer }
            guard let moved = allocate(newSize) else { return nil }
            moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
            deallocate(pointer)
            return moved
        }
        guard let moved = takeSlot(newSize) else { return realloc(pointer, newSize) }
        moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        free(pointer)
        return moved
    }

    /// Frees memory from ``allocate(_:)`` or ``reallocate(_:oldSize:newSize:)``.
    func deallocate(_ pointer: UnsafeMutableRawPointer) {
        guard let (index, slot) = slot(of: pointer) else { return free(pointer) }
        let slotClass = classes[index]
        if slotClass.state.withLock({ $0.keepWarm(slot, limit: warmLimit) }) { return }
        // Outside the lock: nobody can take the slot before it is on the cold list.
        madvise(pointer, slotClass.size, MADV_DONTNEED)
        slotClass.state.withLock { $0.cold.append(slot) }
    }

    /// Whether `pointer` is one of the pool's slots (for tests).
    func owns(_ pointer: UnsafeRawPointer) -> Bool {
        slot(of: UnsafeMutableRawPointer(mutating: pointer)) != nil
    }

    /// Free slots of the class that serves `size`: warm (pages kept) and cold (pages given back).
    func freeSlots(size: Int) -> (warm: Int, cold: Int) {
        guard let index = classIndex(for: size) else { return (0, 0) }
        return classes[index].state.withLock { ($0.warm.count, $0.cold.count) }
    }

    private func classIndex(for size: Int) -> Int? {
        guard base != 0 else { return nil }
        return Self.classSizes.firstIndex { size <= $0 && size > $0 / 2 }
    }

    private func takeSlot(_ size: Int) -> UnsafeMutableRawPointer? {
        guard let index = classIndex(for: size) else { return nil }
        let slotClass = classes[index]
        let limit = slotCounts[index]
        guard let slot = slotClass.state.withLock({ $0.take(limit: limit) }) else { return nil }
        return UnsafeMutableRawPointer(bitPattern: base + UInt(index * reservation + slot * slotClass.size))
    }

    /// The class and slot index of `pointer`, or nil when malloc's.
    private func slot(of pointer: UnsafeMutableRawPointer) -> (Int, Int)? {
        let address = UInt(bitPattern: pointer)
        guard base != 0, address >= base, address - base < UInt(reservation * classes.count) else { return nil }
        let offset = Int(address - base)
        let index = offset / reservation
        return (index, (offset % reservation) / classes[index].size)
    }

    private final class SlotClass: Sendable {
        let size: Int
        let state = Mutex(SlotLists())

        init(size: Int) { self.size = size }
    }

    /// Slot indices of one class: free ones with their pages (most recent last), free ones
    /// without, and the first never handed out.
    private struct SlotLists {
        var warm: [Int] = []
        var cold: [Int] = []
        var untouched = 0

        mutating func take(limit: Int) -> Int? {
            if let slot = warm.popLast() { return slot }
            if let slot = cold.popLast() { return slot }
            guard untouched < limit else { return nil }
            defer { untouched += 1 }
            return untouched
        }

        /// Adds `slot` to the warm list unless it is full.
        mutating func keepWarm(_ slot: Int, limit: Int) -> Bool {
            guard warm.count < limit else { return false }
            warm.append(slot)
            return true
        }
    }
}

extension ByteBufferAllocator {
    /// For the proxy's connections: buffers of 16 to 64 KiB from ``ConnectionBufferPool/shared``.
    static let connectionBuffers = ByteBufferAllocator(
        allocate: { ConnectionBufferPool.shared.allocate(Int($0)) },
        reallocate: { ConnectionBufferPool.shared.reallocate($0, oldSize: Int($1), newSize: Int($2)) },
        deallocate: { ConnectionBufferPool.shared.deallocate($0) },
        copy: { $0.copyMemory(from: $1, byteCount: Int($2)) })
}
