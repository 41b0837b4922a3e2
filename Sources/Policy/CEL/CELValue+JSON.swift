import Foundation

/// Conversions between CEL values and JSON, as Kubernetes objects and admission requests are
/// JSON: objects become maps with string keys, integers `int`, numbers with a fraction or
/// exponent `double`.
extension CELValue {
    /// Converts `JSONSerialization` output (or plain Swift values of the same shapes).
    ///
    /// `NSNumber` booleans become `.bool`, integers `.int` (or `.uint` above `Int64.max`),
    /// floating-point numbers `.double`; `NSNull` becomes `.null`.
    public init(jsonObject: Any) throws(CELError) {
        switch jsonObject {
        case is NSNull:
            self = .null
        case let text as String:
            self = .string(text)
        case let value where Swift.type(of: value) == Bool.self:
            self = .bool((value as? Bool) ?? false)
        case let value as Int where Swift.type(of: jsonObject) == Int.self:
            self = .int(Int64(value))
        case let value as Double where Swift.type(of: jsonObject) == Double.self:
            self = .double(value)
        case let number as NSNumber:
            self = Self.number(number)
        case let array as [Any]:
            var elements: [CELValue] = []
            elements.reserveCapacity(array.count)
            for element in array { elements.append(try CELValue(jsonObject: element)) }
            self = .list(elements)
        case let dictionary as [String: Any]:
            var builder = CELMap.Builder()
            for key in dictionary.keys.sorted() {
                if let value = dictionary[key] { builder.set(.string(key), try CELValue(jsonObject: value)) }
            }
            self = .map(builder.build())
        case let value as CELValue:
            self = value
        default:
            throw CELError(.invalidArgument, "unsupported JSON value of type \(Swift.type(of: jsonObject))")
        }
    }

    private static let booleanClass: AnyClass = Swift.type(of: NSNumber(value: true))

    private static func number(_ number: NSNumber) -> CELValue {
        if Swift.type(of: number) == booleanClass { return .bool(number.boolValue) }
        switch String(cString: number.objCType) {
        case "d", "f": return .double(number.doubleValue)
        case "Q", "L", "I", "S", "C":
            let value = number.uint64Value
            return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
        default: return .int(number.int64Value)
        }
    }

    /// Parses JSON text (any JSON value, not only objects).
    public init(json: Data) throws(CELError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        } catch {
            throw CELError(.invalidArgument, "invalid JSON: \(error.localizedDescription)")
        }
        try self.init(jsonObject: object)
    }

    /// A value `JSONSerialization` can write: bytes as base64, timestamps as RFC 3339, durations
    /// as `"<seconds>s"`, types by name, `optional.none()` as null. NaN and infinities are errors.
    public func jsonObject() throws(CELError) -> Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .int(let number): return Int(number)
        case .uint(let number): return number
        case .double(let number):
            guard number.isFinite else { throw CELError(.invalidArgument, "\(number) cannot be represented in JSON") }
            return number
        case .string(let text): return text
        case .bytes(let bytes): return CELBase64.encode(bytes)
        case .list(let elements):
            var array: [Any] = []
            for element in elements { array.append(try element.jsonObject()) }
            return array
        case .map(let map):
            var dictionary: [String: Any] = [:]
            for (key, value) in map {
                let name: String
                if case .string(let text) = key { name = text } else { name = key.debugDescription }
                dictionary[name] = try value.jsonObject()
            }
            return dictionary
        case .timestamp(let timestamp): return timestamp.rfc3339
        case .duration(let duration): return duration.goString
        case .type(let type): return type.name
        case .optional(let wrapped): return try wrapped?.jsonObject() ?? NSNull()
        case .url(let url): return url.source
        case .ip(let ip): return ip.description
        case .cidr(let cidr): return cidr.description
        case .quantity(let quantity): return quantity.description
        }
    }
}
