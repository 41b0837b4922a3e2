import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How a remote command ended, as carried on the error stream (protocols.md §3.4).
public enum RemoteCommandStatus: Hashable, Sendable {
    /// `{"metadata":{},"status":"Success"}`: exit code 0.
    case success
    /// `NonZeroExitCode` with an `ExitCode` cause: kubectl exits with `code` (0–255).
    case exitCode(Int, message: String)
    /// Any other failure, e.g. `InternalError` with code 500.
    case failure(message: String, reason: String?, code: Int?)

    /// A non-zero exit as the kubelet words it.
    public static func exited(_ code: Int) -> RemoteCommandStatus {
        code == 0
            ? .success : .exitCode(code, message: "command terminated with non-zero exit code: exit status \(code)")
    }

    /// The v4+ error-stream payload, byte-compatible with Go's encoding (field order, escaping of `<>&`).
    public var json: String {
        switch self {
        case .success:
            return #"{"metadata":{},"status":"Success"}"#
        case .exitCode(let code, let message):
            return #"{"metadata":{},"status":"Failure","message":"# + Self.quote(message)
                + #","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":""# + String(code)
                + #""}]}}"#
        case .failure(let message, let reason, let code):
            var json = #"{"metadata":{},"status":"Failure","message":"# + Self.quote(message)
            if let reason { json += #","reason":"# + Self.quote(reason) }
            if let code { json += #","code":"# + String(code) }
            return json + "}"
        }
    }

    /// What goes on the error stream for `protocolVersion`: the JSON status for v4+; for v1–v3 nothing on
    /// success and the failure text otherwise.
    public func errorStreamPayload(for protocolVersion: RemoteCommandProtocol) -> ByteBuffer {
        if protocolVersion.usesStatusJSON { return ByteBuffer(string: json) }
        switch self {
        case .success: return ByteBuffer()
        case .exitCode(_, let message), .failure(let message, _, _): return ByteBuffer(string: message)
        }
    }

    /// Decodes an error stream read to its end, as client-go does: for v4+ an empty stream is success
    /// (a trap: a proxy that lost the status must write an explicit failure); for v1–v3 any text is a failure.
    public static func decode(
        errorStream: ByteBuffer, protocolVersion: RemoteCommandProtocol
    ) throws(KubernetesStreamError) -> RemoteCommandStatus {
        guard errorStream.readableBytes > 0 else { return .success }
        guard protocolVersion.usesStatusJSON else {
            return .failure(message: String(buffer: errorStream), reason: nil, code: nil)
        }
        let status: WireStatus
        do {
            status = try JSONDecoder().decode(WireStatus.self, from: Data(errorStream.readableBytesView))
        } catch {
            throw KubernetesStreamError(.invalidStatus, "error stream is not a Status: \(String(buffer: errorStream))")
        }
        guard status.status != "Success" else { return .success }
        let message = status.message ?? ""
        if status.reason == "NonZeroExitCode" {
            let cause = status.details?.causes?.first { $0.reason == "ExitCode" }
            guard let text = cause?.message, let code = UInt8(text) else {
                throw KubernetesStreamError(.invalidStatus, "NonZeroExitCode without an exit code: \(message)")
            }
            return .exitCode(Int(code), message: message)
        }
        return .failure(message: message, reason: status.reason, code: status.code)
    }

    /// The parts of `metav1.Status` the protocol uses.
    private struct WireStatus: Decodable {
        struct Details: Decodable {
            let causes: [Cause]?
        }
        struct Cause: Decodable {
            let reason: String?
            let message: String?
        }
        let status: String?
        let message: String?
        let reason: String?
        let code: Int?
        let details: Details?
    }

    /// A JSON string literal escaped as Go's encoder does.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += "\\u" + Self.hex4(scalar.value)
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + Self.hex4(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<4).reversed().map { digits[Int((value >> (UInt32($0) * 4)) & 0xF)] })
    }
}
