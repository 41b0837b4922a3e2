import Foundation

/// One forwarded connection as a classic pcap file (LINKTYPE_RAW: IPv4 packets), so that the raw
/// bytes of a port-forward can be read with the tools made for it: Wireshark dissects the
/// protocol inside, `tcpdump -r` lists it. Port-forward carries a byte stream, not packets, so the
/// encoder writes the TCP conversation that would have carried it: a handshake, each chunk as a
/// segment (split at the IPv4 size limit) with running sequence numbers, and a FIN per direction.
///
/// The addresses are stand-ins (the client is `10.255.0.1:49152`, the pod `10.255.0.2:<port>`):
/// the real ends are kubectl's loopback socket and the pod's, neither of which the proxy sees.
/// Checksums are computed, so no tool flags the packets. Pure: it returns bytes and keeps no file.
struct PacketCaptureEncoder: Sendable {
    static let clientAddress: [UInt8] = [10, 255, 0, 1]
    static let podAddress: [UInt8] = [10, 255, 0, 2]
    static let clientPort: UInt16 = 49152
    /// The most payload one IPv4 packet holds (65535 minus the IPv4 and TCP headers).
    static let maximumSegment = 65535 - 40

    let podPort: UInt16
    private var nextSequence: [PortForwardDirection: UInt32] = [.clientToPod: 1, .podToClient: 1]
    private var finished: Set<PortForwardDirection> = []
    private var packetID: UInt16 = 0

    init(podPort: UInt16) {
        self.podPort = podPort
    }

    /// The file header, then the three-way handshake at `time`.
    mutating func start(time: Date) -> [UInt8] {
        var bytes = Self.fileHeader()
        bytes += packet(time: time, from: .clientToPod, flags: .syn, sequence: 0, acknowledgement: nil, payload: [])
        bytes += packet(
            time: time, from: .podToClient, flags: [.syn, .ack], sequence: 0, acknowledgement: 1, payload: [])
        bytes += packet(time: time, from: .clientToPod, flags: .ack, sequence: 1, acknowledgement: 1, payload: [])
        return bytes
    }

    /// Segments carrying `payload` one way.
    mutating func data(_ payload: some Collection<UInt8>, direction: PortForwardDirection, time: Date) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = Array(payload)[...]
        while !rest.isEmpty {
            let segment = rest.prefix(Self.maximumSegment)
            rest = rest.dropFirst(segment.count)
            let sequence = nextSequence[direction, default: 1]
            nextSequence[direction] = sequence &+ UInt32(segment.count)
            bytes += packet(
                time: time, from: direction, flags: [.ack, .push], sequence: sequence,
                acknowledgement: nextSequence[direction.reversed, default: 1], payload: segment)
        }
        return bytes
    }

    /// A FIN one way (that side finished sending); nothing the second time.
    mutating func finish(direction: PortForwardDirection, time: Date) -> [UInt8] {
        guard finished.insert(direction).inserted else { return [] }
        let sequence = nextSequence[direction, default: 1]
        nextSequence[direction] = sequence &+ 1  // a FIN takes one sequence number
        return packet(
            time: time, from: direction, flags: [.fin, .ack], sequence: sequence,
            acknowledgement: nextSequence[direction.reversed, default: 1], payload: [])
    }

    struct Flags: OptionSet, Sendable {
        let rawValue: UInt8
        static let fin = Flags(rawValue: 0x01)
        static let syn = Flags(rawValue: 0x02)
        static let push = Flags(rawValue: 0x08)
        static let ack = Flags(rawValue: 0x10)
    }

    /// pcap's global header: microsecond timestamps, version 2.4, snap length 65535, LINKTYPE_RAW.
    static func fileHeader() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(UInt32(0xa1b2_c3d4))
        bytes.appendLittleEndian(UInt16(2))
        bytes.appendLittleEndian(UInt16(4))
        bytes.appendLittleEndian(UInt32(0))  // time zone offset
        bytes.appendLittleEndian(UInt32(0))  // timestamp accuracy
        bytes.appendLittleEndian(UInt32(65535))
        bytes.appendLittleEndian(UInt32(101))  // LINKTYPE_RAW
        return bytes
    }

    private mutating func packet(
        time: Date, from direction: PortForwardDirection, flags: Flags, sequence: UInt32, acknowledgement: UInt32?,
        payload: some Collection<UInt8>
    ) -> [UInt8] {
        let (sourceAddress, sourcePort, destinationAddress, destinationPort) =
            direction == .clientToPod
            ? (Self.clientAddress, Self.clientPort, Self.podAddress, podPort)
            : (Self.podAddress, podPort, Self.clientAddress, Self.clientPort)
        var tcp: [UInt8] = []
        tcp.appendBigEndian(sourcePort)
        tcp.appendBigEndian(destinationPort)
        tcp.appendBigEndian(sequence)
        tcp.appendBigEndian(acknowledgement ?? 0)
        tcp.append(5 << 4)  // data offset: 5 words, no options
        tcp.append(flags.union(acknowledgement == nil ? [] : .ack).rawValue)
        tcp.appendBigEndian(UInt16(65535))  // window
        tcp.appendBigEndian(UInt16(0))  // checksum, set below
        tcp.appendBigEndian(UInt16(0))  // urgent pointer
        tcp += payload
        var pseudoHeader = sourceAddress + destinationAddress + [0, 6]
        pseudoHeader.appendBigEndian(UInt16(tcp.count))
        let tcpChecksum = Self.checksum(pseudoHeader + tcp)
        tcp[16] = UInt8(tcpChecksum >> 8)
        tcp[17] = UInt8(tcpChecksum & 0xff)

        packetID &+= 1
        var ip: [UInt8] = [0x45, 0]  // version 4, 5-word header; no TOS
        ip.appendBigEndian(UInt16(20 + tcp.count))
        ip.appendBigEndian(packetID)
        ip.appendBigEndian(UInt16(0x4000))  // don't fragment
        ip += [64, 6]  // TTL, TCP
        ip.appendBigEndian(UInt16(0))  // checksum, set below
        ip += sourceAddress + destinationAddress
        let ipChecksum = Self.checksum(ip)
        ip[10] = UInt8(ipChecksum >> 8)
        ip[11] = UInt8(ipChecksum & 0xff)

        let microseconds = UInt64(max(0, time.timeIntervalSince1970) * 1_000_000)
        var record: [UInt8] = []
        record.appendLittleEndian(UInt32(truncatingIfNeeded: microseconds / 1_000_000))
        record.appendLittleEndian(UInt32(microseconds % 1_000_000))
        record.appendLittleEndian(UInt32(ip.count + tcp.count))  // captured length
        record.appendLittleEndian(UInt32(ip.count + tcp.count))  // length on the wire
        return record + ip + tcp
    }

    /// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
    /// 16-bit words, an odd last byte padded with zero.
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

extension PortForwardDirection {
    fileprivate var reversed: PortForwardDirection { self == .clientToPod ? .podToClient : .clientToPod }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    fileprivate mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
