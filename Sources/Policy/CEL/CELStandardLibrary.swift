import Foundation

/// The CEL standard library (cel-spec `doc/langdef.md`, "Standard Definitions"): `size`,
/// `type`, `dyn`, the type conversions, and string matching. Other files add the time,
/// string, list, math, optional and Kubernetes functions.
enum CELStandardLibrary {
    /// Every library's functions, indexed once for all environments.
    static let registry = CELFunctionRegistry([
        core, strings, time, optionals, CELExtensionLibrary.strings, CELExtensionLibrary.lists,
        CELExtensionLibrary.math, CELExtensionLibrary.encoders, CELExtensionLibrary.sets,
        CELKubernetesLibrary.lists, CELKubernetesLibrary.regex, CELKubernetesLibrary.urls,
        CELKubernetesLibrary.network, CELKubernetesLibrary.quantity,
    ])

    static let sizeSignatures = ["string -> int", "bytes -> int", "list(T) -> int", "map(K, V) -> int"]

    static let core: [CELFunctionDecl] = [
        .global("size", sizeSignatures, .unary(size)),
        .member("size", sizeSignatures, .unary(size)),
        .global("type", ["T -> type(T)"], .unary { value throws(CELError) in .type(value.celType) }),
        .global("dyn", ["T -> dyn"], .unary { value throws(CELError) in value }),
        .global(
            "int", ["int -> int", "uint -> int", "double -> int", "string -> int", "timestamp -> int"],
            .unary(toInt)),
        .global("uint", ["uint -> uint", "int -> uint", "double -> uint", "string -> uint"], .unary(toUInt)),
        .global(
            "double", ["double -> double", "int -> double", "uint -> double", "string -> double"], .unary(toDouble)),
        .global(
            "string",
            [
                "string -> string", "int -> string", "uint -> string", "double -> string", "bool -> string",
                "bytes -> string", "timestamp -> string", "duration -> string", "net.IP -> string",
                "net.CIDR -> string",
            ], .unary(toString)),
        .global("bytes", ["bytes -> bytes", "string -> bytes"], .unary(toBytes)),
        .global("bool", ["bool -> bool", "string -> bool"], .unary(toBool)),
        .global("matches", ["string, string -> bool"], cost: .traversal, .binary(matches)),
        .member("matches", ["string, string -> bool"], cost: .traversal, .binary(matches)),
    ]

    static func size(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .string(let text): return .int(Int64(text.unicodeScalars.count))
        case .bytes(let bytes): return .int(Int64(bytes.count))
        case .list(let elements): return .int(Int64(elements.count))
        case .map(let map): return .int(Int64(map.count))
        default: throw CELError.noOverload("size", value)
        }
    }

    static func toInt(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .int: return value
        case .uint(let number):
            guard let result = Int64(exactly: number) else { throw CELError(.overflow, "int range error") }
            return .int(result)
        case .double(let number):
            guard number > -0x1p63, number < 0x1p63 else { throw CELError(.overflow, "int range error") }
            return .int(Int64(number.rounded(.towardZero)))
        case .string(let text):
            guard let result = Int64(text) else { throw CELError(.invalidArgument, "cannot convert '\(text)' to int") }
            return .int(result)
        case .timestamp(let timestamp): return .int(timestamp.seconds)
        case .duration(let duration): return .int(duration.nanoseconds)
        default: throw CELError.noOverload("int", value)
        }
    }

    static func toUInt(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .uint: return value
        case .int(let number):
            guard let result = UInt64(exactly: number) else { throw CELError(.overflow, "uint range error") }
            return .uint(result)
        case .double(let number):
            guard number > -1, number < 0x1p64 else { throw CELError(.overflow, "uint range error") }
            return .uint(UInt64(number.rounded(.towardZero)))
        case .string(let text):
            guard let result = UInt64(text) else {
                throw CELError(.invalidArgument, "cannot convert '\(text)' to uint")
            }
            return .uint(result)
        default: throw CELError.noOverload("uint", value)
        }
    }

    static func toDouble(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .double: return value
        case .int(let number): return .double(Double(number))
        case .uint(let number): return .double(Double(number))
        case .string(let text):
            guard let result = Double(text) else {
                throw CELError(.invalidArgument, "cannot convert '\(text)' to double")
            }
            return .double(result)
        default: throw CELError.noOverload("double", value)
        }
    }

    static func toString(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .string: return value
        case .int(let number): return .string(String(number))
        case .uint(let number): return .string(String(number))
        case .double(let number): return .string(CELFormatting.double(number))
        case .bool(let flag): return .string(flag ? "true" : "false")
        case .bytes(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw CELError(.invalidArgument, "invalid UTF-8 in bytes, cannot convert to string")
            }
            return .string(text)
        case .timestamp(let timestamp): return .string(timestamp.rfc3339)
        case .duration(let duration): return .string(duration.goString)
        case .ip(let ip): return .string(ip.description)
        case .cidr(let cidr): return .string(cidr.description)
        default: throw CELError.noOverload("string", value)
        }
    }

    static func toBytes(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .bytes: return value
        case .string(let text): return .bytes(Array(text.utf8))
        default: throw CELError.noOverload("bytes", value)
        }
    }

    static func toBool(_ value: CELValue) throws(CELError) -> CELValue {
        switch value {
        case .bool: return value
        case .string(let text):
            switch text {
            case "1", "t", "T", "true", "TRUE", "True": return .bool(true)
            case "0", "f", "F", "false", "FALSE", "False": return .bool(false)
            default: throw CELError(.invalidArgument, "Type conversion error from 'string' to 'bool'")
            }
        default: throw CELError.noOverload("bool", value)
        }
    }

    static func matches(_ subject: CELValue, _ pattern: CELValue) throws(CELError) -> CELValue {
        guard case .string(let text) = subject, case .string(let expression) = pattern else {
            throw CELError.noOverload("matches", subject, pattern)
        }
        return .bool(try CELRegex(expression).matches(text))
    }
}
