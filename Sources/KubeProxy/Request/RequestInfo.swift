import Foundation

/// What a Kubernetes API request is about, parsed from its method, path and query exactly as the
/// apiserver's `RequestInfoFactory` does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
///
/// The proxy authorizes what this parse says and forwards a path rebuilt from it, so the
/// apiserver cannot read the request differently from the proxy: ambiguous paths (encoded
/// slashes, dot segments, empty segments) are refused instead of interpreted.
public struct RequestInfo: Sendable, Hashable {
    /// False for discovery, `/version`, `/healthz` and other non-resource paths.
    public var isResourceRequest: Bool
    /// The decoded path.
    public var path: String
    /// get, list, watch, create, update, patch, delete, deletecollection, proxy; for non-resource
    /// requests the lower-cased HTTP method.
    public var verb: String
    /// `api` or `apis`; empty for non-resource requests.
    public var apiPrefix: String
    public var apiGroup: String
    public var apiVersion: String
    public var namespace: String
    public var resource: String
    public var subresource: String
    public var name: String
    /// The path segments after the object for `proxy` requests (`pods/x/proxy/a/b`), if any.
    public var parts: [String]

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Parses `method` and `target` (the HTTP request target: path and query, as received).
    public init(method: String, target: String) throws(ParseError) {
        let (rawPath, query) = Self.split(target)
        path = try Self.decodePath(rawPath)
        let segments =
            path == "/" ? [] : path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        isResourceRequest = false
        verb = method.lowercased()
        apiPrefix = ""
        apiGroup = ""
        apiVersion = ""
        namespace = ""
        resource = ""
        subresource = ""
        name = ""
        parts = []
        guard let prefix = segments.first, prefix == "api" || prefix == "apis" else { return }
        var current = segments.dropFirst()
        if prefix == "apis" {
            guard current.count >= 3 else { return }  // /apis, /apis/{group}, /apis/{group}/{version}: discovery
            apiGroup = current.removeFirst()
        } else {
            guard current.count >= 2 else { return }  // /api, /api/v1: discovery
        }
        apiPrefix = prefix
        apiVersion = current.removeFirst()
        isResourceRequest = true
        switch method.uppercased() {
        case "POST": verb = "create"
        case "GET", "HEAD": verb = "get"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = "delete"
        default: verb = ""
        }
        if let first = current.first, first == "watch" || first == "proxy" {
            guard current.count >= 2 else {
                throw ParseError(message: "unable to determine kind and namespace from url \(path)")
            }
            verb = first
            current = current.dropFirst()
        }
        if current.first == "namespaces" {
            if current.count > 1 {
                namespace = current[current.startIndex + 1]
                // /namespaces/{name}/status and /finalize are subresources of the namespace itself.
                if current.count > 2, !["status", "finalize"].contains(current[current.startIndex + 2]) {
                    current = current.dropFirst(2)
                }
            }
        }
        let remaining = Array(current)
        if remaining.count >= 3, verb != "proxy" { subresource = remaining[2] }
        if remaining.count >= 2 { name = remaining[1] }
        if remaining.count >= 1 { resource = remaining[0] }
        if verb == "proxy", remaining.count > 2 { parts = Array(remaining[2...]) }
        if name.isEmpty, verb == "get" {
            verb = Self.boolean(query["watch"]) ? "watch" : "list"
            // A list or watch narrowed to one object by an exact field selector is about that object.
            if let selector = query["fieldSelector"]?.first {
                for requirement in selector.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    for operator_ in ["metadata.name==", "metadata.name="] where requirement.hasPrefix(operator_) {
                        let value = String(requirement.dropFirst(operator_.count))
                        if Self.isValidPathSegmentName(value) { name = value }
                        break
                    }
                }
            }
        }
        if name.isEmpty, verb == "delete" { verb = "deletecollection" }
    }

    /// apimachinery's `IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
    static func isValidPathSegmentName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("%")
    }

    /// The query of `target` as the apiserver reads it (repeated keys kept in order).
    public static func query(of target: String) -> [String: [String]] { split(target).query }

    /// The apiserver's boolean for a query parameter: only the first value counts, and it is false
    /// only when absent, `0` or `false` (any case). An empty value is true.
    public static func boolean(_ values: [String]?) -> Bool {
        guard let first = values?.first else { return false }
        return !(first == "0" || first.lowercased() == "false")
    }

    private static func split(_ target: String) -> (path: String, query: [String: [String]]) {
        guard let mark = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: [String]] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: true) {
            let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = percentDecode(String(keyValue[0]), plusIsSpace: true) ?? String(keyValue[0])
            let value =
                keyValue.count > 1 ? (percentDecode(String(keyValue[1]), plusIsSpace: true) ?? String(keyValue[1])) : ""
            query[key, default: []].append(value)
        }
        return (String(target[..<mark]), query)
    }

    /// Decodes the path, refusing anything whose segments could be read two ways.
    static func decodePath(_ raw: String) throws(ParseError) -> String {
        guard raw.hasPrefix("/") else { throw ParseError(message: "the request path must start with /") }
        if raw == "/" { return raw }
        var decodedSegments: [String] = []
        // On every request: bytes rather than Foundation's string search, and no decoding for the
        // usual segment without a `%`.
        for segment in raw.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let decoded: String
            if segment.contains(UInt8(ascii: "%")) {
                guard let value = percentDecode(String(Substring(segment)), plusIsSpace: false) else {
                    throw ParseError(message: "the request path has an invalid percent-encoding")
                }
                decoded = value
            } else {
                decoded = String(Substring(segment))
            }
            if decoded.utf8.contains(UInt8(ascii: "/")) {
                throw ParseError(message: "the request path has an encoded \"/\" in a segment")
            }
            if decoded == "." || decoded == ".." {
                throw ParseError(message: "the request path has a \"\(decoded)\" segment")
            }
            // A control character is one byte in UTF-8, and no byte of a longer sequence is below 0x80.
            if decoded.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                throw ParseError(message: "the request path has a control character")
            }
            decodedSegments.append(decoded)
        }
        // An empty segment (`//`, or a trailing `/` followed by more) would be read differently by
        // path-cleaning routers; only a single trailing slash is tolerated, as the apiserver does.
        if decodedSegments.dropLast().contains(where: \.isEmpty) {
            throw ParseError(message: "the request path has an empty segment")
        }
        return "/" + decodedSegments.joined(separator: "/")
    }

    static func percentDecode(_ text: String, plusIsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else if plusIsSpace, byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The path to forward: the decoded segments percent-encoded again, so the upstream reads the
    /// same segments the proxy authorized.
    public var canonicalPath: String {
        // The usual path needs no escape and is its own canonical form.
        if path.utf8.allSatisfy({ $0 == UInt8(ascii: "/") || Self.isUnescaped($0) }) { return path }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        return "/" + segments.map { Self.percentEncode(String($0)) }.joined(separator: "/")
    }

    static func percentEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            if isUnescaped(byte) {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return result
    }

    /// Bytes a path segment carries as they are (RFC 3986 `pchar` without `%`).
    private static func isUnescaped(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "="), UInt8(ascii: "+"),
            UInt8(ascii: "$"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "!"), UInt8(ascii: "*"),
            UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "&"):
            true
        default:
            false
        }
    }
}

extension String {
    fileprivate func leftPadded(_ length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
