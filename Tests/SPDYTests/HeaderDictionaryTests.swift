import SPDY
import Testing

@Suite("SPDY/3 header dictionary")
struct HeaderDictionaryTests {
    /// zlib's adler-32 (RFC 1950, section 8), computed here independently of zlib.
    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }

    @Test("is the 1423 bytes whose adler-32 is the SPDY/3 DICTID e3c6a7c2")
    func lengthAndChecksum() {
        #expect(SPDYHeaderDictionary.bytes.count == 1423)
        #expect(Self.adler32(SPDYHeaderDictionary.bytes) == 0xE3C6_A7C2)
        #expect(SPDYHeaderDictionary.adler32 == 0xE3C6_A7C2)
    }

    @Test("has no trailing NUL (which would give adler-32 8b97a7c2)")
    func noTrailingNul() {
        #expect(SPDYHeaderDictionary.bytes.last == UInt8(ascii: "."))
        #expect(Self.adler32(SPDYHeaderDictionary.bytes + [0]) == 0x8B97_A7C2)
    }
}
