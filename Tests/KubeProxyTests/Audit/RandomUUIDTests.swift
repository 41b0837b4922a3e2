import Foundation
import Testing

@testable import KubeProxy

@Suite("Random UUIDs")
struct RandomUUIDTests {
    @Test("bytes are laid out big-endian with the version 4 and RFC variant bits, in lowercase")
    func layout() {
        #expect(
            RandomUUID.format(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
                == "01234567-89ab-4def-bedc-ba9876543210")
        #expect(RandomUUID.format(high: 0, low: 0) == "00000000-0000-4000-8000-000000000000")
        #expect(RandomUUID.format(high: .max, low: .max) == "ffffffff-ffff-4fff-bfff-ffffffffffff")
    }

    @Test("made UUIDs parse as version 4 UUIDs and differ")
    func random() throws {
        let made = (0..<100).map { _ in RandomUUID.make() }
        #expect(Set(made).count == made.count)
        for text in made {
            let uuid = try #require(UUID(uuidString: text))
            #expect(uuid.uuidString.lowercased() == text)
            #expect(uuid.uuid.6 >> 4 == 4)
            #expect(uuid.uuid.8 >> 6 == 0b10)
        }
    }
}
