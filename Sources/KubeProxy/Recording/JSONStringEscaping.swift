/// JSON string literals (RFC 8259 §7) written from UTF-8 bytes: quotes, backslashes and control
/// characters (and DEL) escaped, everything else, non-ASCII included, copied. Every byte that
/// needs escaping is ASCII and never part of a multi-byte character, so valid UTF-8 in is valid
/// UTF-8 out.
///
/// A recording runs every byte a session prints through it, and output full of control characters
/// (`head -c 1G /dev/zero`) becomes six bytes per byte. Words of eight bytes that need no escape,
/// or repeat one byte, go in one step, and a run of such repeating words is copied from its first
/// word's output; any other byte is one table load, one unaligned 8-byte store and one add.
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
            var position = 0
            while position + 8 <= bytes.count {
                let word = loadWord(bytes, at: position)
                position &+= 8
                if isPlain(word) {
                    count &+= 8
                } else if let byte = uniformByte(word) {
                    count &+= 8 &* Int(truncatingIfNeeded: table[Int(byte)] &>> 56)
                    seen |= byte
                } else {
                    for shift in stride(from: 0, to: 64, by: 8) {
                        let byte = UInt8(truncatingIfNeeded: word &>> UInt64(shift))
                        count &+= Int(truncatingIfNeeded: table[Int(byte)] &>> 56)
                        seen |= byte
                    }
                }
            }
            while position < bytes.count {
                let byte = bytes[position]
                count &+= Int(truncatingIfNeeded: table[Int(byte)] &>> 56)
                seen |= byte
                position &+= 1
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
            var position = 0
            while position + 8 <= bytes.count {
                let word = loadWord(bytes, at: position)
                position &+= 8
                if isPlain(word) {
                    out.storeBytes(of: word.littleEndian, toByteOffset: index, as: UInt64.self)
                    index &+= 8
                } else if let byte = uniformByte(word) {
                    // One escape eight times: the stores do not wait for each other's lengths.
                    let entry = table[Int(byte)]
                    let length = Int(truncatingIfNeeded: entry &>> 56)
                    for copy in 0..<8 {
                        out.storeBytes(of: entry.littleEndian, toByteOffset: index &+ copy &* length, as: UInt64.self)
                    }
                    // The words after it that repeat it too (a run of zeros is often megabytes):
                    // their output repeats what was just written, so it is copied in doubling
                    // blocks, a few wide copies instead of a store per byte.
                    var words = 1
                    while position &+ 8 <= bytes.count, loadWord(bytes, at: position) == word {
                        position &+= 8
                        words &+= 1
                    }
                    let total = words &* 8 &* length
                    var filled = 8 &* length
                    while filled < total {
                        let count = min(filled, total &- filled)
                        (out + (index &+ filled)).copyMemory(from: out + index, byteCount: count)
                        filled &+= count
                    }
                    index &+= total
                } else {
                    for shift in stride(from: 0, to: 64, by: 8) {
                        let entry = table[Int(UInt8(truncatingIfNeeded: word &>> UInt64(shift)))]
                        out.storeBytes(of: entry.littleEndian, toByteOffset: index, as: UInt64.self)
                        index &+= Int(truncatingIfNeeded: entry &>> 56)
                    }
                }
            }
            while position < bytes.count {
                let entry = table[Int(bytes[position])]
                out.storeBytes(of: entry.littleEndian, toByteOffset: index, as: UInt64.self)
                index &+= Int(truncatingIfNeeded: entry &>> 56)
                position &+= 1
            }
            out.storeBytes(of: UInt8(ascii: "\""), toByteOffset: index, as: UInt8.self)
            return index + 1
        }
    }

    // Eight bytes at a time: text is mostly bytes that need no escape, and binary output often
    // repeats one byte (zeros); either way a word goes in one step.

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Eight bytes from `position`, the first in the lowest byte.
    @inline(__always)
    private static func loadWord(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + position).loadUnaligned(as: UInt64.self))
    }

    /// Whether no byte of `word` needs escaping: none below 0x20, above 0x7E, `"` or `\`.
    @inline(__always)
    static func isPlain(_ word: UInt64) -> Bool {
        // Per byte, without carries between bytes: the high bit marks a byte below n in
        // `(x - n) & ~x`, above n in `(x + 127 - n) | x`, and a zero byte in `(x - 1) & ~x`.
        let control = (word &- ones &* 0x20) & ~word
        let high = (word &+ ones) | word
        let quotes = word ^ (ones &* 0x22)
        let backslashes = word ^ (ones &* 0x5C)
        let quote = (quotes &- ones) & ~quotes
        let backslash = (backslashes &- ones) & ~backslashes
        return (control | high | quote | backslash) & highBits == 0
    }

    /// The byte `word` repeats eight times, if it does.
    @inline(__always)
    private static func uniformByte(_ word: UInt64) -> UInt8? {
        let byte = UInt8(truncatingIfNeeded: word)
        return word == UInt64(byte) &* ones ? byte : nil
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
