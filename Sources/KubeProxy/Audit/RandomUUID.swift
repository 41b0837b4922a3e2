/// Random (version 4) UUIDs as lowercase text, for audit IDs.
///
/// Foundation's `UUID()` opens, reads and closes `/dev/urandom` on every call on Linux: three system
/// calls and a file descriptor per proxied request. The standard library's generator uses
/// `getrandom(2)`, one call and no descriptor.
enum RandomUUID {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return format(high: generator.next(), low: generator.next())
    }

    /// The UUID whose 16 bytes are `high` then `low`, big-endian, with the version (4) and variant
    /// (RFC 9562) bits set: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    static func format(high: UInt64, low: UInt64) -> String {
        let high = high & ~0xF000 | 0x4000
        let low = low & ~(0b11 << 62) | (0b10 << 62)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for index in 0..<32 {
            switch index {
            case 8, 12, 16, 20: text.append(UInt8(ascii: "-"))
            default: break
            }
            let word = index < 16 ? high : low
            text.append(hexDigits[Int(word >> UInt64(60 - 4 * (index % 16)) & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
