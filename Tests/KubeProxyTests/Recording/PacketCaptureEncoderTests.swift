import Foundation
import Testing

@testable import KubeProxy

/// The pcap written for a forwarded connection, read back with a reader written from the formats
/// (pcap, IPv4, TCP), independent of the encoder's code.
@Suite("PacketCaptureEncoder")
struct PacketCaptureEncoderTests {
    struct Packet {
        let source: String
        let destination: String
        let sequence: UInt32
        let acknowledgement: UInt32
        let flags: UInt8
        let payload: [UInt8]
        let ipChecksumValid: Bool
        let tcpChecksumValid: Bool
    }

    /// Parses a pcap file of LINKTYPE_RAW IPv4/TCP packets.
    static func read(_ bytes: [UInt8]) throws -> [Packet] {
        func le32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        func be16(_ data: ArraySlice<UInt8>, _ at: Int) -> Int {
            Int(data[data.startIndex + at]) << 8 | Int(data[data.startIndex + at + 1])
        }
        func be32(_ data: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
            (0..<4).reduce(0) { $0 << 8 | UInt32(data[data.startIndex + at + $1]) }
        }
        guard bytes.count >= 24, le32(0) == 0xa1b2_c3d4, le32(20) == 101 else {
            throw TestFailure("not a little-endian LINKTYPE_RAW pcap")
        }
        var packets: [Packet] = []
        var offset = 24
        while offset < bytes.count {
            let length = Int(le32(offset + 8))
            #expect(le32(offset + 12) == UInt32(length))
            let ip = bytes[(offset + 16)..<(offset + 16 + length)]
            offset += 16 + length
            #expect(ip[ip.startIndex] == 0x45 && ip[ip.startIndex + 9] == 6)
            #expect(be16(ip, 2) == length)
            let tcp = ip.dropFirst(20)
            let address = { (at: Int) in (0..<4).map { String(ip[ip.startIndex + at + $0]) }.joined(separator: ".") }
            let pseudo =
                Array(ip[(ip.startIndex + 12)..<(ip.startIndex + 20)]) + [
                    0, 6, UInt8(tcp.count >> 8), UInt8(tcp.count & 0xff),
                ]
            packets.append(
                Packet(
                    source: "\(address(12)):\(be16(tcp, 0))", destination: "\(address(16)):\(be16(tcp, 2))",
                    sequence: be32(tcp, 4), acknowledgement: be32(tcp, 8), flags: tcp[tcp.startIndex + 13],
                    payload: Array(tcp.dropFirst(Int(tcp[tcp.startIndex + 12] >> 4) * 4)),
                    ipChecksumValid: onesComplementSum(Array(ip.prefix(20))) == 0xffff,
                    tcpChecksumValid: onesComplementSum(pseudo + tcp) == 0xffff))
        }
        return packets
    }

    static func onesComplementSum(_ bytes: [UInt8]) -> UInt32 {
        var sum: UInt32 = 0
        for index in stride(from: 0, to: bytes.count, by: 2) {
            sum += UInt32(bytes[index]) << 8 | (index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0)
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return sum
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test("a conversation becomes a handshake, sequenced segments both ways and a FIN per side, checksums valid")
    func conversation() throws {
        var encoder = PacketCaptureEncoder(podPort: 5432)
        let time = Date(timeIntervalSince1970: 1_700_000_000.25)
        var file = encoder.start(time: time)
        file += encoder.data(Array("GET / HTTP/1.0\r\n\r\n".utf8), direction: .clientToPod, time: time)
        let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        file += encoder.data(large, direction: .podToClient, time: time)
        file += encoder.finish(direction: .podToClient, time: time)
        file += encoder.finish(direction: .podToClient, time: time)  // once only
        file += encoder.finish(direction: .clientToPod, time: time)

        let packets = try Self.read(file)
        #expect(packets.allSatisfy { $0.ipChecksumValid && $0.tcpChecksumValid })
        let client = "10.255.0.1:49152"
        let pod = "10.255.0.2:5432"
        #expect(packets.map(\.source) == [client, pod, client, client, pod, pod, pod, client])
        #expect(packets.map(\.flags) == [0x02, 0x12, 0x10, 0x18, 0x18, 0x18, 0x11, 0x11])
        // The pod's 100,000 bytes do not fit one IPv4 packet: two segments, in sequence.
        #expect(packets[4].payload.count == PacketCaptureEncoder.maximumSegment)
        #expect(packets[4].payload + packets[5].payload == large)
        #expect(packets[4].sequence == 1 && packets[5].sequence == 1 + UInt32(PacketCaptureEncoder.maximumSegment))
        #expect(packets[3].payload == Array("GET / HTTP/1.0\r\n\r\n".utf8))
        // Each side's FIN follows its data and acknowledges the other side's bytes.
        #expect(packets[6].sequence == 1 + 100_000)
        #expect(packets[6].acknowledgement == 1 + 18)
        #expect(packets[7].sequence == 1 + 18)
        #expect(packets[7].acknowledgement == 1 + 100_000 + 1)
        // Timestamps: seconds and microseconds of the event.
        #expect(file[24..<28] == [0x00, 0xf1, 0x53, 0x65][...])
        #expect(file[28..<32] == [0x90, 0xd0, 0x03, 0x00][...])
    }

    @Test("the Internet checksum matches RFC 1071's worked example")
    func checksum() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (before the complement).
        #expect(PacketCaptureEncoder.checksum([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]) == ~UInt16(0xddf2))
        #expect(PacketCaptureEncoder.checksum([0xff]) == ~UInt16(0xff00))
    }
}
