import NIOHTTP1
import Policy

/// Which headers cross the proxy, and in what form.
enum ForwardedHeaders {
    /// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and never cross a proxy.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Whether a client header is about who the caller is. These never go upstream: the proxy
    /// states the caller's identity itself, through impersonation.
    static func isIdentityHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "authorization" || lower.hasPrefix("impersonate-") || lower == "cookie"
    }

    /// The headers of the upstream request: the client's minus hop-by-hop and identity headers,
    /// plus the proxy's credential and the caller's impersonated identity. For upgrades the
    /// `Connection`/`Upgrade` pair is kept, since it is the request itself.
    static func upstream(
        from client: HTTPHeaders, user: RequestAttributes.UserInfo, authorization: String?, host: String,
        isUpgrade: Bool, extraSession: String
    ) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let connectionTokens = Set(
            client[canonicalForm: "connection"].map { $0.lowercased().trimmingCharacters(in: .whitespaces) })
        for (name, value) in client {
            let lower = name.lowercased()
            if isIdentityHeader(lower) || lower == "host" || lower == "content-length" { continue }
            if hopByHop.contains(lower) || connectionTokens.contains(lower) {
                if isUpgrade && (lower == "upgrade") { headers.add(name: name, value: value) }
                continue
            }
            headers.add(name: name, value: value)
        }
        if isUpgrade { headers.add(name: "Connection", value: "Upgrade") }
        headers.add(name: "Host", value: host)
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        headers.add(name: "Impersonate-User", value: user.name)
        for group in user.groups where group != "system:authenticated" {
            headers.add(name: "Impersonate-Group", value: group)
        }
        for (key, values) in user.extra.sorted(by: { $0.key < $1.key }) {
            for value in values { headers.add(name: "Impersonate-Extra-\(extraKey(key))", value: value) }
        }
        headers.add(name: "Impersonate-Extra-\(extraKey(sessionExtraKey))", value: extraSession)
        return headers
    }

    /// The `userInfo.extra` key carrying the proxy's session id on every impersonated request: the
    /// webhook's proof that a request came through the proxy (only the proxy may impersonate it).
    static let sessionExtraKey = "portcullis.dev/session"

    /// Extra keys travel in header names, so they are percent-encoded (as client-go does).
    static func extraKey(_ key: String) -> String {
        var result = ""
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"),
                UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "^"), UInt8(ascii: "`"),
                UInt8(ascii: "|"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }

    /// The response headers to the client: upstream's minus hop-by-hop (NIO re-frames the body).
    static func downstream(from upstream: HTTPHeaders, warnings: [String], dropContentLength: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, value) in upstream {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || (dropContentLength && lower == "content-length") { continue }
            headers.add(name: name, value: value)
        }
        for warning in warnings {
            // RFC 7234 warn-code 299 ("miscellaneous persistent warning"), as the apiserver sends.
            let escaped = warning.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                of: "\"", with: "\\\"")
            headers.add(name: "Warning", value: "299 - \"\(escaped)\"")
        }
        return headers
    }
}
