import Foundation
import Policy

#if canImport(Glibc)
    import Glibc
#endif

/// Writes an ``AuditRecord`` as one JSON line, keys in the order kube-apiserver writes them.
///
/// Written by hand because the audit line is on every request's path: JSONSerialization with
/// sorted keys cost about 40% of the proxy's CPU per request (ICU collation of every key, bridging
/// to NSDictionary), for a shape that never changes.
struct AuditEventEncoder {
    private(set) var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(1024)
    }

    static func line(_ record: AuditRecord, completedAt: Date) -> [UInt8] {
        var encoder = AuditEventEncoder()
        encoder.encode(record, completedAt: completedAt)
        encoder.bytes.append(UInt8(ascii: "\n"))
        return encoder.bytes
    }

    mutating func encode(_ record: AuditRecord, completedAt: Date) {
        raw("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":")
        string(record.auditID)
        raw(",\"stage\":")
        string(record.stage)
        raw(",\"requestURI\":")
        string(record.requestURI)
        raw(",\"verb\":")
        string(record.info?.verb ?? record.method.lowercased())
        raw(",\"user\":")
        if let user = record.user {
            userInfo(user)
            // The proxy impersonates the caller, or whom a policy let them act as.
            raw(",\"impersonatedUser\":")
            userInfo(record.impersonatedUser ?? user)
        } else {
            raw("{\"username\":\"system:anonymous\",\"groups\":[\"system:unauthenticated\"]}")
        }
        raw(",\"sourceIPs\":")
        strings([record.sourceIP])
        raw(",\"userAgent\":")
        string(record.userAgent)
        if let info = record.info, info.isResourceRequest {
            raw(",\"objectRef\":{\"resource\":")
            string(info.resource)
            for (key, value) in [
                ("namespace", info.namespace), ("name", info.name), ("apiGroup", info.apiGroup),
                ("apiVersion", info.apiVersion), ("subresource", info.subresource),
            ] where !value.isEmpty {
                raw(",\"\(key)\":")
                string(value)
            }
            raw("}")
        }
        raw(",\"responseStatus\":{\"metadata\":{},\"code\":\(record.responseCode)}")
        raw(",\"requestReceivedTimestamp\":")
        string(Self.timestamp(record.receivedAt))
        raw(",\"stageTimestamp\":")
        string(Self.timestamp(completedAt))
        raw(",\"annotations\":{")
        for (index, (key, value)) in record.allAnnotations.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { raw(",") }
            string(key)
            raw(":")
            string(value)
        }
        raw("}}")
    }

    private mutating func userInfo(_ user: RequestAttributes.UserInfo) {
        raw("{\"username\":")
        string(user.name)
        if !user.uid.isEmpty {
            raw(",\"uid\":")
            string(user.uid)
        }
        raw(",\"groups\":")
        strings(user.groups)
        raw("}")
    }

    private mutating func strings(_ values: [String]) {
        raw("[")
        for (index, value) in values.enumerated() {
            if index > 0 { raw(",") }
            string(value)
        }
        raw("]")
    }

    private mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    /// A JSON string: quotes, backslashes and control characters escaped; other UTF-8 kept as is.
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20, 0x7F:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                    hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// RFC 3339 with microseconds in UTC, as kube-apiserver writes its audit timestamps.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let micros = Int(((interval - Double(seconds)) * 1_000_000).rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let microDigits = String(micros)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: max(0, 6 - microDigits.count)) + microDigits + "Z"
    }
}
