/// Finds the entries of a tar stream as it passes, without keeping it: `kubectl cp` is an exec of
/// `tar` whose stdin (upload) or stdout (download) is an archive, and a recording of it should say
/// which files moved, not hold the files.
///
/// Understands ustar (name + prefix), GNU long names (`L`) and pax extended headers (`x`, `path=`),
/// which covers GNU tar, busybox tar and Go's archive/tar (what kubectl writes). Anything that is
/// not a valid header stops the scan (``State/invalid(_:)``); bytes still flow, the recording just
/// says the stream was not a tar archive from there on.
///
/// ```
///  header ──entry with data──▶ content(remaining) ──done──▶ header
///     ├──L / x──▶ extendedHeader(remaining) ──done──▶ header (the next entry is renamed)
///     ├──two zero blocks──▶ end
///     └──bad checksum──▶ invalid
/// ```
struct TarEntryScanner: Sendable {
    struct Entry: Sendable, Equatable {
        var name: String
        var size: Int
        /// The tar type flag: `0` file, `5` directory, `2` symlink, …
        var type: Character
    }

    enum State: Sendable, Equatable {
        case header
        /// Skipping `remaining` bytes of an entry's data and padding.
        case content(remaining: Int)
        /// Reading a GNU long name or pax header of `remaining` bytes (padding after it skipped).
        case extendedHeader(kind: UInt8, remaining: Int, padding: Int)
        case end
        case invalid(String)
    }

    var isInvalid: Bool {
        if case .invalid = state { return true }
        return false
    }

    static let blockSize = 512
    /// A long name or pax header bigger than this is not a real archive's.
    static let maximumExtensionSize = 64 * 1024

    private(set) var state: State = .header
    private var block: [UInt8] = []
    private var extensionBytes: [UInt8] = []
    private var pendingName: String?
    private var zeroBlocks = 0

    init() {}

    /// Consumes the next bytes of the stream and returns the entries whose headers completed.
    mutating func consume(_ bytes: some Collection<UInt8>) -> [Entry] {
        var entries: [Entry] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            switch state {
            case .end, .invalid:
                return entries
            case .content(let remaining):
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let step = min(remaining, available)
                index = bytes.index(index, offsetBy: step)
                state = remaining == step ? .header : .content(remaining: remaining - step)
            case .extendedHeader(let kind, let remaining, let padding):
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let step = min(remaining, available)
                let stop = bytes.index(index, offsetBy: step)
                extensionBytes.append(contentsOf: bytes[index..<stop])
                index = stop
                if remaining == step {
                    pendingName = Self.extendedName(kind: kind, data: extensionBytes) ?? pendingName
                    extensionBytes = []
                    state = padding > 0 ? .content(remaining: padding) : .header
                } else {
                    state = .extendedHeader(kind: kind, remaining: remaining - step, padding: padding)
                }
            case .header:
                let needed = Self.blockSize - block.count
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let stop = bytes.index(index, offsetBy: min(needed, available))
                block.append(contentsOf: bytes[index..<stop])
                index = stop
                if block.count == Self.blockSize {
                    if let entry = headerCompleted() { entries.append(entry) }
                    block = []
                }
            }
        }
        return entries
    }

    /// Interprets a full header block and moves to what follows it.
    private mutating func headerCompleted() -> Entry? {
        if block.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks == 2 { state = .end }
            return nil
        }
        zeroBlocks = 0
        guard Self.checksumMatches(block) else {
            state = .invalid("a header's checksum does not match: not a tar archive")
            return nil
        }
        guard let size = Self.size(block[124..<136]) else {
            state = .invalid("a header's size field is not a number")
            return nil
        }
        let padded = (size + Self.blockSize - 1) / Self.blockSize * Self.blockSize
        let type = block[156]
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "x"):
            guard size <= Self.maximumExtensionSize else {
                state = .invalid("an extended header of \(size) bytes is over the limit")
                return nil
            }
            state = size > 0 ? .extendedHeader(kind: type, remaining: size, padding: padded - size) : .header
            return nil
        case UInt8(ascii: "g"), UInt8(ascii: "K"):
            state = padded > 0 ? .content(remaining: padded) : .header  // global pax, long link name
            return nil
        default:
            state = padded > 0 && Self.hasData(type) ? .content(remaining: padded) : .header
            let name = pendingName ?? Self.headerName(block)
            pendingName = nil
            return Entry(name: name, size: size, type: Character(Unicode.Scalar(type == 0 ? UInt8(ascii: "0") : type)))
        }
    }

    /// Links, directories and devices have no data blocks whatever their size field says.
    static func hasData(_ type: UInt8) -> Bool {
        !["1", "2", "3", "4", "5", "6"].map { UInt8(ascii: $0) }.contains(type)
    }

    /// `prefix/name` for ustar; just `name` for the old GNU layout, which uses that space for times.
    static func headerName(_ block: [UInt8]) -> String {
        let name = field(block[0..<100])
        let isUstar = block[257..<263].elementsEqual("ustar\0".utf8)
        let prefix = isUstar ? field(block[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    static func field(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Octal, NUL- or space-terminated; or GNU base-256 when the top bit of the first byte is set.
    static func size(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let first = bytes.first else { return nil }
        if first & 0x80 != 0 {
            var value = Int(first & 0x7F)
            for byte in bytes.dropFirst() {
                guard value < Int.max >> 8 else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        let digits = bytes.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }
        guard !digits.isEmpty else { return 0 }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "7"), value < Int.max >> 3 else { return nil }
            value = value << 3 | Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// The checksum field holds the sum of the header's bytes with itself counted as spaces.
    static func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = size(block[148..<156]) else { return false }
        var sum = 0
        for (offset, byte) in block.enumerated() {
            sum += (148..<156).contains(offset) ? Int(UInt8(ascii: " ")) : Int(byte)
        }
        return sum == stored
    }

    /// The next entry's name from a GNU long name (`L`) or a pax header's `path` record (`x`).
    static func extendedName(kind: UInt8, data: [UInt8]) -> String? {
        if kind == UInt8(ascii: "L") { return field(data[...]) }
        // Records are "LENGTH key=value\n", LENGTH counting the whole record.
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
                index + length <= data.count, space + 1 < index + length
            else { return nil }
            let record = data[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")),
                String(decoding: record[record.startIndex..<equals], as: UTF8.self) == "path"
            {
                return String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return nil
    }
}
