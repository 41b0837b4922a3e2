/// The parameters of an exec or attach request, parsed as the apiserver parses them, and the
/// canonical query the proxy forwards instead of the client's (so the upstream runs exactly what
/// was authorized; see protocols.md §6).
public struct StreamParameters: Sendable, Hashable {
    public var command: [String]
    public var container: String
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool

    public init(query: [String: [String]]) {
        command = query["command"] ?? []
        container = query["container"]?.first ?? ""
        stdin = RequestInfo.boolean(query["stdin"])
        stdout = RequestInfo.boolean(query["stdout"])
        stderr = RequestInfo.boolean(query["stderr"])
        tty = RequestInfo.boolean(query["tty"])
    }

    /// `command=…&container=…&stderr=true&stdin=true&stdout=true&tty=true`, true flags only, keys
    /// sorted, as kubectl writes it.
    public var canonicalQuery: String {
        var pairs = command.map { "command=\(Self.encode($0))" }
        if !container.isEmpty { pairs.append("container=\(Self.encode(container))") }
        for (name, value) in [("stderr", stderr), ("stdin", stdin), ("stdout", stdout), ("tty", tty)] where value {
            pairs.append("\(name)=true")
        }
        return pairs.joined(separator: "&")
    }

    static func encode(_ value: String) -> String {
        var result = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}
