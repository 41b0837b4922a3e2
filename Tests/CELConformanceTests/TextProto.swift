/// A schema-less reader for the protobuf text format, enough for the cel-spec conformance
/// files: messages become trees of named fields; scalars stay as tokens or unescaped bytes.
struct TextProtoField {
    let name: String
    let value: TextProtoValue
}

struct TextProtoMessage {
    var fields: [TextProtoField] = []

    func first(_ name: String) -> TextProtoValue? { fields.first { $0.name == name }?.value }
    func all(_ name: String) -> [TextProtoValue] { fields.filter { $0.name == name }.map(\.value) }
    func message(_ name: String) -> TextProtoMessage? { first(name)?.message }
    func string(_ name: String) -> String? { first(name)?.text }
    func bool(_ name: String) -> Bool { first(name)?.token == "true" }
    func has(_ name: String) -> Bool { first(name) != nil }
}

indirect enum TextProtoValue {
    /// An identifier or number, as written.
    case token(String)
    /// A (possibly concatenated) string literal after unescaping: raw bytes.
    case bytes([UInt8])
    case message(TextProtoMessage)

    var message: TextProtoMessage? {
        if case .message(let message) = self { return message }
        return nil
    }

    var token: String? {
        if case .token(let token) = self { return token }
        return nil
    }

    var bytes: [UInt8]? {
        if case .bytes(let bytes) = self { return bytes }
        return nil
    }

    var text: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

    /// Whether a field named `name` occurs anywhere below this value.
    func containsField(named name: String) -> Bool {
        guard let message else { return false }
        return message.fields.contains { $0.name == name || $0.value.containsField(named: name) }
    }
}

struct TextProtoError: Error, CustomStringConvertible {
    let description: String
}

struct TextProtoReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    static func parse(_ text: String) throws -> TextProtoMessage {
        var reader = TextProtoReader(text)
        let message = try reader.parseFields(until: nil)
        return message
    }

    private mutating func skipSpace() {
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "#") {
                while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
            } else if [9, 10, 11, 12, 13, 32].contains(byte) {
                position += 1
            } else {
                return
            }
        }
    }

    private func fail(_ message: String) -> TextProtoError {
        TextProtoError(description: "textproto: \(message) at byte \(position)")
    }

    private mutating func parseFields(until terminator: UInt8?) throws -> TextProtoMessage {
        var message = TextProtoMessage()
        while true {
            skipSpace()
            if position >= bytes.count {
                if terminator != nil { throw fail("unexpected end") }
                return message
            }
            if let terminator, bytes[position] == terminator {
                position += 1
                return message
            }
            let name = try parseName()
            skipSpace()
            var sawColon = false
            if position < bytes.count && bytes[position] == UInt8(ascii: ":") {
                position += 1
                sawColon = true
                skipSpace()
            }
            guard position < bytes.count else { throw fail("missing value") }
            if bytes[position] == UInt8(ascii: "[") {
                // The list form `name: [a, b]` repeats the field.
                position += 1
                skipSpace()
                while position < bytes.count && bytes[position] != UInt8(ascii: "]") {
                    message.fields.append(TextProtoField(name: name, value: try parseValue(sawColon: true, name)))
                    skipSpace()
                    if position < bytes.count && bytes[position] == UInt8(ascii: ",") { position += 1 }
                    skipSpace()
                }
                position += 1
            } else {
                message.fields.append(TextProtoField(name: name, value: try parseValue(sawColon: sawColon, name)))
            }
            skipSpace()
            if position < bytes.count && (bytes[position] == UInt8(ascii: ",") || bytes[position] == UInt8(ascii: ";"))
            {
                position += 1
            }
        }
    }

    private mutating func parseValue(sawColon: Bool, _ name: String) throws -> TextProtoValue {
        if bytes[position] == UInt8(ascii: "{") || bytes[position] == UInt8(ascii: "<") {
            let close = bytes[position] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: ">")
            position += 1
            return .message(try parseFields(until: close))
        }
        guard sawColon else { throw fail("expected ':' after \(name)") }
        return try parseScalar()
    }

    private mutating func parseName() throws -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "[") {
            while position < bytes.count && bytes[position] != UInt8(ascii: "]") { position += 1 }
            position += 1
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }
        while position < bytes.count, isNameByte(bytes[position]) { position += 1 }
        guard position > start else { throw fail("expected a field name") }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
    }

    private mutating func parseScalar() throws -> TextProtoValue {
        if bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'") {
            var output: [UInt8] = []
            while position < bytes.count, bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'")
            {
                output += try parseString()
                skipSpace()
            }
            return .bytes(output)
        }
        let start = position
        while position < bytes.count, isNameByte(bytes[position]) { position += 1 }
        guard position > start else { throw fail("expected a value") }
        return .token(String(decoding: bytes[start..<position], as: UTF8.self))
    }

    private mutating func parseString() throws -> [UInt8] {
        let quote = bytes[position]
        position += 1
        var output: [UInt8] = []
        while position < bytes.count, bytes[position] != quote {
            let byte = bytes[position]
            position += 1
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                continue
            }
            guard position < bytes.count else { throw fail("bad escape") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "n"): output.append(10)
            case UInt8(ascii: "t"): output.append(9)
            case UInt8(ascii: "r"): output.append(13)
            case UInt8(ascii: "a"): output.append(7)
            case UInt8(ascii: "b"): output.append(8)
            case UInt8(ascii: "f"): output.append(12)
            case UInt8(ascii: "v"): output.append(11)
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                var value = 0
                var count = 0
                while count < 2, position < bytes.count, let digit = hexValue(bytes[position]) {
                    value = value * 16 + digit
                    position += 1
                    count += 1
                }
                output.append(UInt8(value))
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let count = escape == UInt8(ascii: "u") ? 4 : 8
                var value: UInt32 = 0
                for _ in 0..<count {
                    guard position < bytes.count, let digit = hexValue(bytes[position]) else { throw fail("bad \\u") }
                    value = value * 16 + UInt32(digit)
                    position += 1
                }
                guard let scalar = Unicode.Scalar(value) else { throw fail("bad code point") }
                output += Array(String(scalar).utf8)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escape - 48)
                var count = 1
                while count < 3, position < bytes.count, bytes[position] >= 48, bytes[position] <= 55 {
                    value = value * 8 + Int(bytes[position] - 48)
                    position += 1
                    count += 1
                }
                output.append(UInt8(truncatingIfNeeded: value))
            default:
                // \\ \' \" \? and any other escaped character stand for themselves.
                output.append(escape)
            }
        }
        guard position < bytes.count else { throw fail("unterminated string") }
        position += 1
        return output
    }

    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: return Int(byte - 48)
        case 65...70: return Int(byte - 55)
        case 97...102: return Int(byte - 87)
        default: return nil
        }
    }
}
