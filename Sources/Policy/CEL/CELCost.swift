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

    /// The most a constant sub-expression may cost to fold at compile time; a costlier one is left
    /// for run time, where the caller's budget applies (compiling has no caller's budget, and an
    /// unbounded fold would let a policy file hang the loader).
    public static let foldingLimit: UInt64 = 10_000
    /// Regular expression work charged per unit: one unit per ten VM steps (threads advanced and
    /// instructions visited), as traversals charge one unit per ten elements.
    static let regexStepsPerUnit = 10

    /// Compiling a pattern at run time costs a quarter unit per program instruction (cel-go
    /// charges a quarter per pattern character).
    static func regexCompileCost(instructions: Int) -> UInt64 { 1 + UInt64(instructions / 4) }

    static func pairwiseCost(_ first: CELValue, _ second: CELValue) -> UInt64 {
        guard case .list(let a) = first, case .list(let b) = second else { return 0 }
        return UInt64((Double(a.count) * Double(b.count) * traversalFactor).rounded(.up))
    }

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

/// The budget of a metered function (see `CELImplementation.metered`), counted in elements
/// traversed: ten to a cost unit, as traversals are charged.
struct CELMeter {
    let allowance: Int
    private(set) var used = 0

    /// What remains of the evaluation's budget, in cost units.
    init(remaining: UInt64) {
        let (elements, overflow) = Int(clamping: remaining).multipliedReportingOverflow(by: 10)
        allowance = overflow ? .max : elements
    }

    /// Takes `elements` from the budget, or fails as an evaluation that runs out of budget does.
    mutating func take(_ elements: Int) throws(CELError) {
        used += elements
        if used > allowance { throw CELError(.costLimitExceeded, CELCost.limitExceededMessage) }
    }

    var cost: UInt64 { UInt64(used / 10 + (used % 10 == 0 ? 0 : 1)) }
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

    /// What is left of the budget.
    var remaining: UInt64 { cost < costLimit ? costLimit - cost : 0 }

    @inline(__always)
    mutating func charge(_ amount: UInt64) throws(CELError) {
        cost &+= amount
        if cost > costLimit { throw CELError(.costLimitExceeded, CELCost.limitExceededMessage) }
    }
}
