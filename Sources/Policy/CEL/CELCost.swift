/// Runtime cost accounting, modelled on cel-go's actual-cost tracking that Kubernetes limits.
///
/// Every variable access, field selection, index, operator and function call costs 1; literals
/// cost 0; each comprehension iteration costs 1; string, bytes and list functions that traverse
/// their arguments cost an extra `size / 10` (cel-go's 0.1 traversal factor), rounded up.
public enum CELCost {
    /// The default per-evaluation budget: Kubernetes' `PerCallLimit` for one CEL expression
    /// (1,000,000).
    public static let defaultLimit: UInt64 = 1_000_000
    /// The extra cost of traversing a string, bytes or list argument, per element or byte.
    static let traversalFactor = 0.1
    /// The message of `.costLimitExceeded` errors, as cel-go phrases it.
    static let limitExceededMessage = "operation cancelled: actual cost limit exceeded"

    static func traversalCost(of value: CELValue) -> UInt64 {
        let size: Int
        switch value {
        case .string(let text): size = text.utf8.count
        case .bytes(let bytes): size = bytes.count
        case .list(let elements): size = elements.count
        case .map(let map): size = map.count
        default: return 0
        }
        return UInt64((Double(size) * traversalFactor).rounded(.up))
    }
}

/// The mutable state of one evaluation: variable slots and the cost spent so far.
///
/// A value type passed `inout` through the compiled closures, so concurrent evaluations of one
/// program share nothing mutable.
struct CELFrame {
    var slots: [CELValue?]
    private(set) var cost: UInt64 = 0
    let costLimit: UInt64

    init(slotCount: Int, costLimit: UInt64) {
        slots = Array(repeating: nil, count: slotCount)
        self.costLimit = costLimit
    }

    @inline(__always)
    mutating func charge(_ amount: UInt64) throws(CELError) {
        cost &+= amount
        if cost > costLimit { throw CELError(.costLimitExceeded, CELCost.limitExceededMessage) }
    }
}
