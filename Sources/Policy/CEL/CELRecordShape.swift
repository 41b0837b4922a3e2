/// The keys of a record the engine builds for every request (`request`, `request.user`, `exec`…),
/// made once at start-up. Maps built over a shape share its keys; a field chain planned against
/// the known shapes knows each field's position in each of them, so that selecting a field of a
/// shaped map is an array read rather than a search that compares names.
final class CELRecordShape: Sendable {
    /// The shape's position in `known`.
    let number: Int
    /// Distinct strings in ascending order, as `CELMap(_:)` orders a dictionary's keys.
    let keys: [CELValue]
    let names: [String]

    private init(number: Int, names: [String]) {
        precondition(zip(names, names.dropFirst()).allSatisfy { $0 < $1 }, "names must be distinct and sorted")
        precondition(names.count <= Int(Int8.max), "positions are kept as Int8")
        self.number = number
        self.names = names
        keys = names.map(CELValue.string)
    }

    /// Every shape, fixed before any expression is planned: plans index their positions by
    /// `number`. Records whose keys are made elsewhere (a policy's `variables`) have no shape.
    static let known: [CELRecordShape] = [
        ["groups", "name", "namespace", "operation", "resource", "source", "subresource", "user", "verb"],
        [
            "groups", "name", "namespace", "namespaceLabels", "operation", "resource", "source", "subresource", "user",
            "verb",
        ],
        ["extra", "groups", "name", "uid"],
        ["group", "resource", "version"],
        ["command", "container", "line", "stdin", "tty"],
    ].enumerated().map { CELRecordShape(number: $0.offset, names: $0.element) }

    static var request: CELRecordShape { known[0] }
    static var requestWithLabels: CELRecordShape { known[1] }
    static var user: CELRecordShape { known[2] }
    static var resource: CELRecordShape { known[3] }
    static var exec: CELRecordShape { known[4] }
}

/// Field names selected one after the other (`request.user.groups` → user, groups), with each
/// name's position in each known record shape found when the expression is planned. Selecting
/// gives the same values and errors as `CELAccess.select` on each name in turn, which it falls
/// back to for maps without a shape and for anything that is not a map.
struct CELFieldChain: Sendable {
    let fields: [String]
    /// Row `step`, column `shape.number`: the field's position in that shape, -1 when absent.
    private let positions: [Int8]

    init(_ fields: [String]) {
        self.fields = fields
        let shapes = CELRecordShape.known
        positions = fields.flatMap { field in
            shapes.map { shape in shape.names.firstIndex(of: field).map { Int8($0) } ?? -1 }
        }
    }

    /// `value.f1.f2…`.
    @inline(__always)
    func select(from value: CELValue) throws(CELError) -> CELValue {
        var value = value
        let shapeCount = CELRecordShape.known.count
        for step in fields.indices {
            if case .map(let map) = value, let shape = map.shapeNumber {
                let position = positions[step &* shapeCount &+ shape]
                if position >= 0 {
                    value = map.value(atShapePosition: Int(position))
                    continue
                }
            }
            value = try CELAccess.select(value, fields[step])
        }
        return value
    }
}
