/// JSON string literals (RFC 8259 §7) written from UTF-8 bytes: quotes, backslashes and control
/// characters (and DEL) escaped, everything else, non-ASCII included, copied. Every byte that
/// needs escaping is ASCII and never part of a multi-byte character, so valid UTF-8 in is valid
/// UTF-8 out.
///
/// Table-driven and branch-free because a recording runs every byte a session prints through it,
/// and output full of control characters (`head -c 1G /dev/zero`) becomes six bytes per byte: a
/// byte is one table load, one unaligned 8-byte store and one add.
enum JSONStringEscaping {
    /// Bytes ``write(_:to:)`` may store past the end of what it wrote.
    static let slack = 8

    /// Per byte: its escaped form packed little-endian into the low six bytes, its length in the
    /// top byte.
    private static let table: [UInt64] = (0...255).map { entry(for: UInt8($0)) }

    /// The length of `bytes` quoted (both quotes included), and whether all of them are ASCII.
    static func measure(_ bytes: UnsafeBufferPointer<UInt8>) -> (count: Int, isASCII: Bool) {
        table.withUnsafeBufferPointer { table in
            var count = 2
            var seen: UInt8 = 0
            for byte in bytes {
                count &+= Int(truncatingIfNeeded: table[Int(byte)] &>> 56)
                seen |= byte
            }
            return (count, seen < 0x80)
        }
    }

    /// Writes `bytes` quoted at `out`, which must have room for `measure(bytes).count + slack`
    /// bytes; returns how many it wrote (the measured count).
    static func write(_ bytes: UnsafeBufferPointer<UInt8>, to out: UnsafeMutableRawPointer) -> Int {
        table.withUnsafeBufferPointer { table in
            out.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
            var index = 1
            for byte in bytes {
                let entry = table[Int(byte)]
                out.storeBytes(of: entry.littleEndian, toByteOffset: index, as: UInt64.self)
                index &+= Int(truncatingIfNeeded: entry &>> 56)
            }
            out.storeBytes(of: UInt8(ascii: "\""), toByteOffset: index, as: UInt8.self)
            return index + 1
        }
    }

    private static func entry(for byte: UInt8) -> UInt64 {
        let escaped: [UInt8]
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): escaped = [UInt8(ascii: "\\"), byte]
        case UInt8(ascii: "\n"): escaped = Array(#"\n"#.utf8)
        case UInt8(ascii: "\r"): escaped = Array(#"\r"#.utf8)
        case UInt8(ascii: "\t"): escaped = Array(#"\t"#.utf8)
        case 0x08: escaped = Array(#"\b"#.utf8)
        case 0x0C: escaped = Array(#"\f"#.utf8)
        case 0..<0x20, 0x7F: escaped = Array(#"\u00"#.utf8) + [hexDigit(byte >> 4), hexDigit(byte & 0xF)]
        default: escaped = [byte]
        }
        var entry = UInt64(escaped.count) << 56
        for (position, value) in escaped.enumerated() { entry |= UInt64(value) << (8 * position) }
        return entry
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
