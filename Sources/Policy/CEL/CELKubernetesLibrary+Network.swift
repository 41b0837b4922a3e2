/// An IP address of the Kubernetes `ip` library. Parsing follows Go's `netip.ParseAddr` and
/// Kubernetes' extra rules: no zones, no IPv4-mapped IPv6 addresses, no leading zeros in IPv4.
public struct CELIPAddress: Sendable, Hashable, CustomStringConvertible {
    static let type = CELType.opaque("net.IP")

    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses `text`, or fails with `.invalidArgument`.
    public init(_ text: String) throws(CELError) {
        func fail() -> CELError {
            CELError(.invalidArgument, "IP Address \"\(text)\" parse error during conversion from string")
        }
        guard !text.contains("%") else { throw fail() }
        if text.contains(":") {
            guard let parsed = Self.parseIPv6(Substring(text)) else { throw fail() }
            guard !(parsed[0..<10].allSatisfy { $0 == 0 } && parsed[10] == 0xFF && parsed[11] == 0xFF) else {
                throw CELError(.invalidArgument, "IPv4-mapped IPv6 address \"\(text)\" is not allowed")
            }
            bytes = parsed
        } else {
            guard let parsed = Self.parseIPv4(Substring(text)) else { throw fail() }
            bytes = parsed
        }
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            result.append(value)
        }
        return result
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        var groups: [UInt16] = []
        var compressAt: Int?
        var rest = text
        if rest.hasPrefix("::") {
            compressAt = 0
            rest = rest.dropFirst(2)
        }
        var embeddedIPv4: [UInt8]?
        while !rest.isEmpty {
            let end = rest.firstIndex(of: ":") ?? rest.endIndex
            let group = rest[..<end]
            if group.contains(".") {
                guard end == rest.endIndex, let v4 = parseIPv4(group) else { return nil }
                embeddedIPv4 = v4
                rest = rest[end...]
                break
            }
            guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
            groups.append(value)
            rest = rest[end...]
            if rest.hasPrefix("::") {
                guard compressAt == nil else { return nil }
                compressAt = groups.count
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                if rest.isEmpty { return nil }
            }
        }
        if let embeddedIPv4 {
            groups.append(UInt16(embeddedIPv4[0]) << 8 | UInt16(embeddedIPv4[1]))
            groups.append(UInt16(embeddedIPv4[2]) << 8 | UInt16(embeddedIPv4[3]))
        }
        if let compressAt {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: Array(repeating: 0, count: 8 - groups.count), at: compressAt)
        }
        guard groups.count == 8 else { return nil }
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// The canonical text form (RFC 5952 for IPv6, as Go's `netip.Addr.String`).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength && end - index >= 2 {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        var text = ""
        index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }

    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
    var isLoopback: Bool { isIPv4 ? bytes[0] == 127 : bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1 }
    var isMulticast: Bool { isIPv4 ? bytes[0] & 0xF0 == 0xE0 : bytes[0] == 0xFF }
    var isLinkLocalMulticast: Bool {
        isIPv4 ? bytes[0] == 224 && bytes[1] == 0 && bytes[2] == 0 : bytes[0] == 0xFF && bytes[1] & 0x0F == 0x02
    }
    var isLinkLocalUnicast: Bool {
        isIPv4 ? bytes[0] == 169 && bytes[1] == 254 : bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80
    }
    var isGlobalUnicast: Bool {
        if isIPv4 && bytes.allSatisfy({ $0 == 0xFF }) { return false }
        return !isUnspecified && !isLoopback && !isMulticast && !isLinkLocalUnicast
    }

    /// The address with all bits after `prefixLength` cleared.
    func masked(_ prefixLength: Int) -> CELIPAddress {
        var result = bytes
        for index in result.indices {
            let keep = max(0, min(8, prefixLength - index * 8))
            result[index] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return CELIPAddress(bytes: result)
    }
}

/// A CIDR prefix of the Kubernetes `cidr` library (Go's `netip.ParsePrefix` with the same
/// restrictions as `CELIPAddress`). The address keeps the bits as written; `masked()` clears them.
public struct CELCIDR: Sendable, Hashable, CustomStringConvertible {
    static let type = CELType.opaque("net.CIDR")

    public let address: CELIPAddress
    public let prefixLength: Int

    init(address: CELIPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `text`, or fails with `.invalidArgument`.
    public init(_ text: String) throws(CELError) {
        func fail() -> CELError {
            CELError(.invalidArgument, "network address parse error during conversion from string: \(text)")
        }
        guard let slash = text.lastIndex(of: "/") else { throw fail() }
        let bitsText = text[text.index(after: slash)...]
        let ip = try CELIPAddress(String(text[..<slash]))
        guard !bitsText.isEmpty, bitsText.allSatisfy({ $0.isASCII && $0.isNumber }),
            bitsText == "0" || !bitsText.hasPrefix("0"), let bits = Int(bitsText), bits <= ip.bytes.count * 8
        else { throw fail() }
        address = ip
        prefixLength = bits
    }

    public var description: String { "\(address)/\(prefixLength)" }

    func contains(_ ip: CELIPAddress) -> Bool {
        ip.bytes.count == address.bytes.count && ip.masked(prefixLength) == address.masked(prefixLength)
    }

    func contains(_ other: CELCIDR) -> Bool { other.prefixLength >= prefixLength && contains(other.address) }
}

extension CELKubernetesLibrary {
    static let network: [CELFunctionDecl] = [
        .global("ip", ["string -> net.IP"], .unary { value throws(CELError) in .ip(try ipArgument(value, "ip")) }),
        .global(
            "isIP", ["string -> bool"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("isIP", value) }
                return .bool((try? CELIPAddress(text)) != nil)
            }),
        .global(
            "ip.isCanonical", ["string -> bool"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("ip.isCanonical", value) }
                return .bool(try CELIPAddress(text).description == text)
            }),
        ipPredicate("family", ["net.IP -> int"]) { .int($0.isIPv4 ? 4 : 6) },
        ipPredicate("isUnspecified") { .bool($0.isUnspecified) },
        ipPredicate("isLoopback") { .bool($0.isLoopback) },
        ipPredicate("isLinkLocalMulticast") { .bool($0.isLinkLocalMulticast) },
        ipPredicate("isLinkLocalUnicast") { .bool($0.isLinkLocalUnicast) },
        ipPredicate("isGlobalUnicast") { .bool($0.isGlobalUnicast) },
        .global(
            "cidr", ["string -> net.CIDR"], .unary { value throws(CELError) in .cidr(try cidrArgument(value, "cidr")) }),
        .global(
            "isCIDR", ["string -> bool"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("isCIDR", value) }
                return .bool((try? CELCIDR(text)) != nil)
            }),
        .member(
            "containsIP", ["net.CIDR, net.IP -> bool", "net.CIDR, string -> bool"],
            .binary { cidr, ip throws(CELError) in
                guard case .cidr(let prefix) = cidr else { throw CELError.noOverload("containsIP", cidr, ip) }
                return .bool(prefix.contains(try ipArgument(ip, "containsIP")))
            }),
        .member(
            "containsCIDR", ["net.CIDR, net.CIDR -> bool", "net.CIDR, string -> bool"],
            .binary { cidr, other throws(CELError) in
                guard case .cidr(let prefix) = cidr else { throw CELError.noOverload("containsCIDR", cidr, other) }
                return .bool(prefix.contains(try cidrArgument(other, "containsCIDR")))
            }),
        .member(
            "ip", ["net.CIDR -> net.IP"],
            .unary { cidr throws(CELError) in
                guard case .cidr(let prefix) = cidr else { throw CELError.noOverload("ip", cidr) }
                return .ip(prefix.address)
            }),
        .member(
            "masked", ["net.CIDR -> net.CIDR"],
            .unary { cidr throws(CELError) in
                guard case .cidr(let prefix) = cidr else { throw CELError.noOverload("masked", cidr) }
                return .cidr(
                    CELCIDR(address: prefix.address.masked(prefix.prefixLength), prefixLength: prefix.prefixLength))
            }),
        .member(
            "prefixLength", ["net.CIDR -> int"],
            .unary { cidr throws(CELError) in
                guard case .cidr(let prefix) = cidr else { throw CELError.noOverload("prefixLength", cidr) }
                return .int(Int64(prefix.prefixLength))
            }),
    ]

    private static func ipArgument(_ value: CELValue, _ function: String) throws(CELError) -> CELIPAddress {
        switch value {
        case .ip(let ip): return ip
        case .string(let text): return try CELIPAddress(text)
        default: throw CELError.noOverload(function, value)
        }
    }

    private static func cidrArgument(_ value: CELValue, _ function: String) throws(CELError) -> CELCIDR {
        switch value {
        case .cidr(let cidr): return cidr
        case .string(let text): return try CELCIDR(text)
        default: throw CELError.noOverload(function, value)
        }
    }

    private static func ipPredicate(
        _ name: String, _ signatures: [String] = [], _ read: @escaping @Sendable (CELIPAddress) -> CELValue
    ) -> CELFunctionDecl {
        .member(
            name, signatures.isEmpty ? ["net.IP -> bool"] : signatures,
            .unary { value throws(CELError) in
                guard case .ip(let ip) = value else { throw CELError.noOverload(name, value) }
                return read(ip)
            })
    }
}
