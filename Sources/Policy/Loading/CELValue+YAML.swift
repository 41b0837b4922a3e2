import Yams

extension CELValue {
    /// A YAML node as CEL sees JSON: mappings become maps, tagged scalars their typed values.
    init(yaml node: Node) {
        switch node {
        case .scalar:
            if node.null != nil && node.scalar?.style == .plain {
                self = .null
            } else if let bool = node.bool, node.scalar?.style == .plain {
                self = .bool(bool)
            } else if let int = node.int, node.scalar?.style == .plain {
                self = .int(Int64(int))
            } else if let double = node.float, node.scalar?.style == .plain {
                self = .double(double)
            } else {
                self = .string(node.string ?? "")
            }
        case .sequence(let sequence):
            self = .list(sequence.map { CELValue(yaml: $0) })
        case .mapping(let mapping):
            self = .map(
                CELMap(
                    uniqueKeysWithLastValues: mapping.map {
                        (CELValue.string($0.key.string ?? ""), CELValue(yaml: $0.value))
                    }))
        case .alias:
            self = .null
        }
    }
}
