/// A remote-command subprotocol (protocols.md §3.1), as negotiated in `X-Stream-Protocol-Version` or
/// `Sec-WebSocket-Protocol`.
public struct RemoteCommandProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// v1: no stdin EOF, errors as text.
    public static let v1 = RemoteCommandProtocol(rawValue: "channel.k8s.io")
    /// v2: fixes v1's stdin handling.
    public static let v2 = RemoteCommandProtocol(rawValue: "v2.channel.k8s.io")
    /// v3: adds the resize stream.
    public static let v3 = RemoteCommandProtocol(rawValue: "v3.channel.k8s.io")
    /// v4: the error stream always carries a JSON `Status`, with exit codes.
    public static let v4 = RemoteCommandProtocol(rawValue: "v4.channel.k8s.io")
    /// v5: adds the WebSocket CLOSE message; over SPDY it behaves exactly as v4.
    public static let v5 = RemoteCommandProtocol(rawValue: "v5.channel.k8s.io")

    /// Every version, newest first: what kubectl ≥ 1.29 offers over SPDY.
    public static let all: [RemoteCommandProtocol] = [.v5, .v4, .v3, .v2, .v1]

    /// 1 to 5, or `nil` for an unknown name.
    public var version: Int? {
        switch self {
        case .v1: 1
        case .v2: 2
        case .v3: 3
        case .v4: 4
        case .v5: 5
        default: nil
        }
    }

    /// Whether a `resize` stream exists (v3+) when a terminal is requested.
    public var supportsResize: Bool { (version ?? 0) >= 3 }
    /// Whether the error stream always carries a JSON `Status` (v4+) rather than failure text.
    public var usesStatusJSON: Bool { (version ?? 0) >= 4 }

    public var description: String { rawValue }
}

/// The `streamtype` of a remote-command stream (protocols.md §3.2).
public struct RemoteCommandStreamType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let error = RemoteCommandStreamType(rawValue: "error")
    public static let stdin = RemoteCommandStreamType(rawValue: "stdin")
    public static let stdout = RemoteCommandStreamType(rawValue: "stdout")
    public static let stderr = RemoteCommandStreamType(rawValue: "stderr")
    public static let resize = RemoteCommandStreamType(rawValue: "resize")

    /// The header carrying the type (sent as `streamType`; Go lower-cases names on the wire).
    public static let headerName = "streamtype"

    public var description: String { rawValue }
}

/// What an exec or attach asks for (protocols.md §6).
public struct RemoteCommandOptions: Hashable, Sendable {
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool

    public init(stdin: Bool = false, stdout: Bool = true, stderr: Bool = true, tty: Bool = false) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
    }

    /// Parses query parameters as the apiserver does: only a flag's first value counts, and it is false
    /// only when absent, `0` or `false` (any case); anything else, even `stdin=`, is true.
    /// A terminal forces stderr off.
    public init(queryItems: [(name: String, value: String)]) {
        func flag(_ name: String) -> Bool {
            guard let value = queryItems.first(where: { $0.name == name })?.value else { return false }
            let lowered = value.lowercased()
            return lowered != "0" && lowered != "false"
        }
        self.init(stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty"))
        if tty { stderr = false }
    }

    /// Whether a server would accept these options: at least one of stdin, stdout and stderr.
    public var isValid: Bool { stdin || stdout || stderr }

    /// The stream types a client creates for these options, in creation order (§3.2).
    public func streamTypes(for protocolVersion: RemoteCommandProtocol) -> [RemoteCommandStreamType] {
        var types: [RemoteCommandStreamType] = [.error]
        if stdin { types.append(.stdin) }
        if stdout { types.append(.stdout) }
        if stderr && !tty { types.append(.stderr) }
        if tty && protocolVersion.supportsResize { types.append(.resize) }
        return types
    }

    /// The canonical query the apiserver would rebuild from these options (§6, §7.4 item 11).
    public var canonicalQueryItems: [(name: String, value: String)] {
        var items: [(String, String)] = []
        if stderr && !tty { items.append(("stderr", "true")) }
        if stdin { items.append(("stdin", "true")) }
        if stdout { items.append(("stdout", "true")) }
        if tty { items.append(("tty", "true")) }
        return items.map { (name: $0.0, value: $0.1) }
    }
}
