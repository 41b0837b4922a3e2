import Foundation

/// `"…".format(list)` of the cel-go strings extension: `%s %d %f %e %b %o %x %X %%`, with an
/// optional precision (`%.3f`). A verb applied to an unsupported argument type is an error.
enum CELStringFormat {
    /// Rendered arguments are metered: a list may hold the same large value many times.
    static func format(_ template: CELValue, _ arguments: CELValue, meter: inout CELMeter) throws(CELError) -> CELValue
    {
        guard case .string(let text) = template, case .list(let args) = arguments else {
            throw CELError.noOverload("format", template, arguments)
        }
        var output = ""
        var iterator = Array(text.unicodeScalars)[...]
        var nextArgument = 0
        while let scalar = iterator.popFirst() {
            guard scalar == "%" else {
                output.unicodeScalars.append(scalar)
                continue
            }
            var precision: Int?
            if iterator.first == "." {
                iterator.removeFirst()
                var digits = ""
                while let digit = iterator.first, digit.isASCIIDigit {
                    digits.unicodeScalars.append(digit)
                    iterator.removeFirst()
                }
                guard let value = Int(digits) else { throw formatError("unable to find end of precision specifier") }
                guard value <= CELLimits.maxFormatPrecision else {
                    throw formatError("precision \(value) is larger than \(CELLimits.maxFormatPrecision)")
                }
                precision = value
            }
            guard let verb = iterator.popFirst() else { throw formatError("unexpected end of format string") }
            if verb == "%" {
                output += "%"
                continue
            }
            guard nextArgument < args.count else {
                throw formatError("index \(nextArgument) out of range")
            }
            let argument = args[nextArgument]
            nextArgument += 1
            output += try render(argument, verb: verb, precision: precision, meter: &meter)
            guard output.utf8.count <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("format") }
        }
        return .string(output)
    }

    private static func formatError(_ message: String) -> CELError {
        CELError(.invalidArgument, "error during formatting: \(message)")
    }

    private static func render(
        _ value: CELValue, verb: Unicode.Scalar, precision: Int?, meter: inout CELMeter
    ) throws(CELError) -> String {
        if verb == "s" { return try plain(value, meter: &meter) }
        let text = try render(value, verb: verb, precision: precision)
        try meter.take(text.utf8.count)
        return text
    }

    private static func render(_ value: CELValue, verb: Unicode.Scalar, precision: Int?) throws(CELError) -> String {
        switch verb {
        case "d":
            switch value {
            case .int(let number): return String(number)
            case .uint(let number): return String(number)
            case .double(let number) where !number.isFinite: return special(number)
            default: throw formatError("decimal clause can only be used on integers, was given \(value.celType)")
            }
        case "f", "e":
            let number: Double
            switch value {
            case .int(let integer): number = Double(integer)
            case .uint(let integer): number = Double(integer)
            case .double(let double): number = double
            default:
                throw formatError(
                    "\(verb == "f" ? "fixed-point" : "scientific") clause can only be used on doubles, was given \(value.celType)"
                )
            }
            if !number.isFinite { return special(number) }
            return String(format: "%.\(precision ?? 6)\(verb == "f" ? "f" : "e")", number)
        case "b":
            switch value {
            case .int(let number): return (number < 0 ? "-" : "") + String(number.magnitude, radix: 2)
            case .uint(let number): return String(number, radix: 2)
            case .bool(let flag): return flag ? "1" : "0"
            default: throw formatError("only integers and bools can be formatted as binary, was given \(value.celType)")
            }
        case "o":
            switch value {
            case .int(let number): return (number < 0 ? "-" : "") + String(number.magnitude, radix: 8)
            case .uint(let number): return String(number, radix: 8)
            default: throw formatError("octal clause can only be used on integers, was given \(value.celType)")
            }
        case "x", "X":
            let upper = verb == "X"
            let text: String
            switch value {
            case .int(let number): text = (number < 0 ? "-" : "") + String(number.magnitude, radix: 16)
            case .uint(let number): text = String(number, radix: 16)
            case .string(let string): text = hex(Array(string.utf8))
            case .bytes(let bytes): text = hex(bytes)
            default:
                throw formatError(
                    "only integers, byte buffers, and strings can be formatted as hex, was given \(value.celType)")
            }
            return upper ? text.uppercased() : text
        default:
            throw formatError("could not parse formatting clause: unrecognized formatting clause \"\(verb)\"")
        }
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private static func special(_ number: Double) -> String {
        number.isNaN ? "NaN" : (number < 0 ? "-Infinity" : "Infinity")
    }

    /// `%s`: strings as they are, other values in a readable form; map entries sorted by key.
    /// Lists and maps are metered for their punctuation before their elements are written, other
    /// values for their text.
    static func plain(_ value: CELValue, meter: inout CELMeter) throws(CELError) -> String {
        switch value {
        case .list(let elements): try meter.take(2 * max(elements.count, 1))
        case .map(let map): try meter.take(4 * max(map.count, 1))
        default: break
        }
        let text = try plainText(value, meter: &meter)
        switch value {
        case .list, .map: break
        default: try meter.take(text.utf8.count)
        }
        guard meter.used <= CELLimits.maxResultSize else { throw CELLimits.resultTooLarge("format") }
        return text
    }

    private static func plainText(_ value: CELValue, meter: inout CELMeter) throws(CELError) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .uint(let number): return String(number)
        case .double(let number):
            if !number.isFinite { return special(number) }
            if number == 0 { return number.sign == .minus ? "-0" : "0" }
            let (digits, point) = CELFormatting.shortestDigits(abs(number))
            return (number < 0 ? "-" : "") + CELFormatting.positional(digits, pointPosition: point)
        case .string(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .list(let elements):
            var parts: [String] = []
            for element in elements { parts.append(try plain(element, meter: &meter)) }
            return "[" + parts.joined(separator: ", ") + "]"
        case .map(let map):
            var entries: [(String, String)] = []
            for (key, entryValue) in map {
                entries.append((try plain(key, meter: &meter), try plain(entryValue, meter: &meter)))
            }
            entries.sort { $0.0 < $1.0 }
            return "{" + entries.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"
        case .timestamp(let timestamp): return timestamp.rfc3339
        case .duration(let duration): return duration.goString
        case .type(let type): return type.name
        case .ip(let ip): return ip.description
        case .cidr(let cidr): return cidr.description
        case .url(let url): return url.source
        case .quantity(let quantity): return quantity.description
        case .optional:
            throw formatError(
                "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given \(value.celType)"
            )
        }
    }
}
