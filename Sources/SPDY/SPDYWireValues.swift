/// A SPDY stream identifier: 31 bits on the wire, 0 is never a valid stream (protocols.md §1.1, §1.5).
///
/// The session client (the side that sent the HTTP upgrade) creates odd ids, the server even ones;
/// each side's ids strictly increase.
public struct SPDYStreamID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    /// The largest id the 31-bit field can carry.
    public static let maximum = SPDYStreamID(rawValue: 0x7FFF_FFFF)
    /// The placeholder id of GOAWAY's last-good field when no stream was accepted.
    public static let none = SPDYStreamID(rawValue: 0)

    public init(rawValue: UInt32) { self.rawValue = rawValue & 0x7FFF_FFFF }
    public init(_ value: UInt32) { self.init(rawValue: value) }

    /// Whether the session client (odd ids) created this stream.
    public var isClientInitiated: Bool { rawValue & 1 == 1 }

    public static func < (lhs: SPDYStreamID, rhs: SPDYStreamID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// A control frame type (protocols.md §1.2). Open: unknown values can be represented, and the
/// decoder rejects them because Go peers die on them.
public struct SPDYFrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let synStream = SPDYFrameType(rawValue: 1)
    public static let synReply = SPDYFrameType(rawValue: 2)
    public static let rstStream = SPDYFrameType(rawValue: 3)
    public static let settings = SPDYFrameType(rawValue: 4)
    public static let ping = SPDYFrameType(rawValue: 6)
    public static let goAway = SPDYFrameType(rawValue: 7)
    public static let headers = SPDYFrameType(rawValue: 8)
    public static let windowUpdate = SPDYFrameType(rawValue: 9)

    public var description: String {
        switch self {
        case .synStream: "SYN_STREAM"
        case .synReply: "SYN_REPLY"
        case .rstStream: "RST_STREAM"
        case .settings: "SETTINGS"
        case .ping: "PING"
        case .goAway: "GOAWAY"
        case .headers: "HEADERS"
        case .windowUpdate: "WINDOW_UPDATE"
        default: "type \(rawValue)"
        }
    }
}

/// The flags byte of a frame (protocols.md §1.2). The meaning of a bit depends on the frame type.
public struct SPDYFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS: the sender half-closes the stream.
    public static let fin = SPDYFlags(rawValue: 0x01)
    /// FLAG_UNIDIRECTIONAL on SYN_STREAM: the recipient may not send on the stream.
    public static let unidirectional = SPDYFlags(rawValue: 0x02)
    /// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
    public static let clearSettings = SPDYFlags(rawValue: 0x01)
}

/// An RST_STREAM status code (protocols.md §1.2). Status 0 is invalid on the wire.
public struct SPDYStreamStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let protocolError = SPDYStreamStatus(rawValue: 1)
    public static let invalidStream = SPDYStreamStatus(rawValue: 2)
    public static let refusedStream = SPDYStreamStatus(rawValue: 3)
    public static let unsupportedVersion = SPDYStreamStatus(rawValue: 4)
    /// What Kubernetes sends for `Reset()` and for refused streams.
    public static let cancel = SPDYStreamStatus(rawValue: 5)
    public static let internalError = SPDYStreamStatus(rawValue: 6)
    public static let flowControlError = SPDYStreamStatus(rawValue: 7)
    public static let streamInUse = SPDYStreamStatus(rawValue: 8)
    public static let streamAlreadyClosed = SPDYStreamStatus(rawValue: 9)
    public static let invalidCredentials = SPDYStreamStatus(rawValue: 10)
    public static let frameTooLarge = SPDYStreamStatus(rawValue: 11)

    public var description: String {
        let names: [UInt32: String] = [
            1: "PROTOCOL_ERROR", 2: "INVALID_STREAM", 3: "REFUSED_STREAM", 4: "UNSUPPORTED_VERSION", 5: "CANCEL",
            6: "INTERNAL_ERROR", 7: "FLOW_CONTROL_ERROR", 8: "STREAM_IN_USE", 9: "STREAM_ALREADY_CLOSED",
            10: "INVALID_CREDENTIALS", 11: "FRAME_TOO_LARGE",
        ]
        return names[rawValue] ?? "status \(rawValue)"
    }
}

/// A GOAWAY status code (protocols.md §1.2, §1.8).
public struct SPDYGoAwayStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let ok = SPDYGoAwayStatus(rawValue: 0)
    public static let protocolError = SPDYGoAwayStatus(rawValue: 1)
    public static let internalError = SPDYGoAwayStatus(rawValue: 2)

    public var description: String {
        switch self {
        case .ok: "OK"
        case .protocolError: "PROTOCOL_ERROR"
        case .internalError: "INTERNAL_ERROR"
        default: "status \(rawValue)"
        }
    }
}

/// A SETTINGS entry id (protocols.md §1.2). Kubernetes peers never send SETTINGS; the codec still
/// reads and writes them so a session can skip them correctly.
public struct SPDYSettingID: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue & 0x00FF_FFFF }

    public static let uploadBandwidth = SPDYSettingID(rawValue: 1)
    public static let downloadBandwidth = SPDYSettingID(rawValue: 2)
    public static let roundTripTime = SPDYSettingID(rawValue: 3)
    public static let maxConcurrentStreams = SPDYSettingID(rawValue: 4)
    public static let currentCongestionWindow = SPDYSettingID(rawValue: 5)
    public static let downloadRetransmissionRate = SPDYSettingID(rawValue: 6)
    public static let initialWindowSize = SPDYSettingID(rawValue: 7)
    public static let clientCertificateVectorSize = SPDYSettingID(rawValue: 8)
}

/// The per-entry flags of a SETTINGS entry (protocols.md §1.2).
public struct SPDYSettingFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let persistValue = SPDYSettingFlags(rawValue: 0x1)
    public static let persisted = SPDYSettingFlags(rawValue: 0x2)
}
