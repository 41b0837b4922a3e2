/// A CEL type (cel-spec `doc/langdef.md`, "Types" and "Type Checking").
///
/// Used by the checker for declarations and deduced types, and at run time as the payload of
/// type values (`type(1) == int`). `.dyn` stands for "not known until evaluation".
public indirect enum CELType: Sendable, Hashable, CustomStringConvertible {
    case dyn
    case null
    case bool
    case int
    case uint
    case double
    case string
    case bytes
    /// `google.protobuf.Timestamp`.
    case timestamp
    /// `google.protobuf.Duration`.
    case duration
    case list(CELType)
    case map(key: CELType, value: CELType)
    /// The type of type values; the parameter is the type denoted, when known.
    case type(CELType)
    /// `optional_type(T)` of the optional-types extension.
    case optional(CELType)
    /// An extension type with no literal syntax, such as `net.IP` or `kubernetes.Quantity`.
    case opaque(String)
    /// A record with known fields. At run time it is a map with string keys (JSON-like data),
    /// so `has()` and field selection behave as on maps.
    case object(CELObjectType)
    /// A type parameter in a function signature, such as `T` in `list(T).size()`.
    case typeParameter(String)
    /// The type of an expression the checker rejected.
    case error

    /// `list(dyn)`.
    public static let dynList = CELType.list(.dyn)
    /// `map(dyn, dyn)`.
    public static let dynMap = CELType.map(key: .dyn, value: .dyn)
    /// `map(string, dyn)`: the type of a JSON object.
    public static let jsonObject = CELType.map(key: .string, value: .dyn)

    /// The name a type value prints and compares as (cel-spec "Type denotations").
    public var name: String {
        switch self {
        case .dyn: return "dyn"
        case .null: return "null_type"
        case .bool: return "bool"
        case .int: return "int"
        case .uint: return "uint"
        case .double: return "double"
        case .string: return "string"
        case .bytes: return "bytes"
        case .timestamp: return "google.protobuf.Timestamp"
        case .duration: return "google.protobuf.Duration"
        case .list: return "list"
        case .map, .object: return "map"
        case .type: return "type"
        case .optional: return "optional_type"
        case .opaque(let name): return name
        case .typeParameter(let name): return name
        case .error: return "*error*"
        }
    }

    public var description: String {
        switch self {
        case .list(let element): return "list(\(element))"
        case .map(let key, let value): return "map(\(key), \(value))"
        case .type(.dyn): return "type"
        case .type(let denoted): return "type(\(denoted))"
        case .optional(let wrapped): return "optional_type(\(wrapped))"
        case .object(let object): return object.name
        default: return name
        }
    }

    /// The type as a run-time type value: parameters erased, as cel-go's `type()` reports them.
    var runtimeType: CELType {
        switch self {
        case .list: return .dynList
        case .map, .object: return .dynMap
        case .type: return .type(.dyn)
        case .optional: return .optional(.dyn)
        default: return self
        }
    }

    var isDyn: Bool {
        switch self {
        case .dyn, .typeParameter, .error: return true
        default: return false
        }
    }

    /// Types whose values are numbers, which CEL compares across kinds.
    var isNumeric: Bool { self == .int || self == .uint || self == .double }

    /// The types the language predeclares as identifiers (`int`, `list`, `type`…), by name.
    static let predeclaredTypeNames: [String: CELType] = [
        "bool": .bool, "int": .int, "uint": .uint, "double": .double, "string": .string, "bytes": .bytes,
        "list": .dynList, "map": .dynMap, "null_type": .null, "type": .type(.dyn),
        "google.protobuf.Timestamp": .timestamp, "google.protobuf.Duration": .duration,
        "optional_type": .optional(.dyn),
    ]
}

/// The declared shape of a JSON-like record, such as the Portcullis `request` variable.
///
/// Fields not listed are still allowed when `isOpen` (selection yields `dyn`); a closed record
/// rejects unknown field names at compile time.
public struct CELObjectType: Sendable, Hashable {
    public let name: String
    public let fields: [String: CELType]
    public let isOpen: Bool

    public init(name: String, fields: [String: CELType], isOpen: Bool = false) {
        self.name = name
        self.fields = fields
        self.isOpen = isOpen
    }
}
