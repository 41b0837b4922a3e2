/// A URL value of the Kubernetes `urls` library, parsed like Go's `url.ParseRequestURI`
/// (an absolute URI or an absolute path) followed by `url.Parse`.
public struct CELURL: Sendable, Hashable {
    static let type = CELType.opaque("kubernetes.URL")

    public let source: String
    public let scheme: String
    /// `host[:port]`, with IPv6 addresses in brackets.
    public let host: String
    /// The path as written (percent-encoded).
    public let escapedPath: String
    public let rawQuery: String

    /// Parses `text`, or fails with `.invalidArgument`.
    public init(_ text: String) throws(CELError) {
        func fail(_ reason: String) -> CELError {
            CELError(.invalidArgument, "URL parse error during conversion from string: parse \"\(text)\": \(reason)")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw fail("net/url: invalid control character in URL")
        }
        guard !text.isEmpty else { throw fail("empty url") }
        source = text
        var rest = Substring(text)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var scheme = ""
        if let colon = rest.firstIndex(of: ":"), let first = rest.first, first.isLetter, first.isASCII {
            let candidate = rest[..<colon]
            if candidate.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) {
                scheme = candidate.lowercased()
                rest = rest[rest.index(after: colon)...]
            }
        } else if let colon = rest.firstIndex(of: ":"), rest[..<colon].allSatisfy({ !"/?".contains($0) }) {
            throw fail("missing protocol scheme")
        }
        self.scheme = scheme
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        rawQuery = query
        guard rest.hasPrefix("/") || !scheme.isEmpty else { throw fail("invalid URI for request") }
        var host = ""
        if rest.hasPrefix("//") {
            let authorityEnd = rest.dropFirst(2).firstIndex(of: "/") ?? rest.endIndex
            var authority = rest[rest.index(rest.startIndex, offsetBy: 2)..<authorityEnd]
            if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
            host = String(authority)
            rest = rest[authorityEnd...]
            try Self.validateHost(host, fail)
        }
        self.host = host
        guard Self.validPercentEncoding(rest) else { throw fail("invalid URL escape") }
        escapedPath = String(rest)
    }

    private static func validateHost(_ host: String, _ fail: (String) -> CELError) throws(CELError) {
        var portPart: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw fail("missing ']' in host") }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("invalid port \"\(after)\" after host") }
                portPart = after.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            portPart = host[host.index(after: colon)...]
        }
        if let portPart, !portPart.allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw fail("invalid port \":\(portPart)\" after host")
        }
        guard validPercentEncoding(Substring(host)) else { throw fail("invalid URL escape") }
    }

    static func validPercentEncoding(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, Unicode.Scalar(bytes[index + 1]).hexDigitValue != nil,
                    Unicode.Scalar(bytes[index + 2]).hexDigitValue != nil
                else { return false }
                index += 3
            } else {
                index += 1
            }
        }
        return true
    }

    /// The host without brackets and port (Go's `Hostname()`).
    public var hostname: String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }

    /// The port, or "" (Go's `Port()`).
    public var port: String {
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return "" }
            let after = host[host.index(after: close)...]
            return after.hasPrefix(":") ? String(after.dropFirst()) : ""
        }
        if let colon = host.lastIndex(of: ":") { return String(host[host.index(after: colon)...]) }
        return ""
    }

    /// The query as a map of names to values (Go's `Query()`); `+` decodes to a space, and a
    /// pair with a bad escape or a semicolon is dropped.
    public var query: [(String, [String])] {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            guard !pair.contains(";") else { continue }
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.unescape(parts[0]), let value = Self.unescape(parts.count > 1 ? parts[1] : "") else {
                continue
            }
            if values[key] == nil { order.append(key) }
            values[key, default: []].append(value)
        }
        return order.map { ($0, values[$0] ?? []) }
    }

    static func unescape(_ text: Substring) -> String? {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = Unicode.Scalar(bytes[index + 1]).hexDigitValue,
                    let low = Unicode.Scalar(bytes[index + 2]).hexDigitValue
                else { return nil }
                output.append(UInt8(high * 16 + low))
                index += 3
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
                index += 1
            default:
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

extension CELKubernetesLibrary {
    static let urls: [CELFunctionDecl] = [
        .global(
            "url", ["string -> kubernetes.URL"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("url", value) }
                return .url(try CELURL(text))
            }),
        .global(
            "isURL", ["string -> bool"],
            .unary { value throws(CELError) in
                guard case .string(let text) = value else { throw CELError.noOverload("isURL", value) }
                return .bool((try? CELURL(text)) != nil)
            }),
        urlAccessor("getScheme") { .string($0.scheme) },
        urlAccessor("getHost") { .string($0.host) },
        urlAccessor("getHostname") { .string($0.hostname) },
        urlAccessor("getPort") { .string($0.port) },
        urlAccessor("getEscapedPath") { .string($0.escapedPath) },
        .member(
            "getQuery", ["kubernetes.URL -> map(string, list(string))"],
            .unary { value throws(CELError) in
                guard case .url(let url) = value else { throw CELError.noOverload("getQuery", value) }
                var builder = CELMap.Builder()
                for (key, values) in url.query { builder.set(.string(key), .list(values.map(CELValue.string))) }
                return .map(builder.build())
            }),
    ]

    private static func urlAccessor(_ name: String, _ read: @escaping @Sendable (CELURL) -> CELValue) -> CELFunctionDecl
    {
        .member(
            name, ["kubernetes.URL -> string"],
            .unary { value throws(CELError) in
                guard case .url(let url) = value else { throw CELError.noOverload(name, value) }
                return read(url)
            })
    }
}
