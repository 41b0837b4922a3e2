import Foundation

/// The policies in force, replaced as a whole when a new set loads cleanly.
///
/// A reload that fails (a syntax error, a CEL type error in any document) leaves the previous
/// engine in place and reports every problem: a bad `kubectl apply` or a half-edited file never
/// opens or closes the gate by accident.
public final class PolicyStore: Sendable {
    private let current: LockedBox<PolicyEngine>

    public init(_ engine: PolicyEngine) {
        current = LockedBox(engine)
    }

    /// The engine to evaluate the next request with.
    public var engine: PolicyEngine { current.value }

    /// Compiles `policies` and swaps them in; on any error the previous set stays in force.
    @discardableResult
    public func replace(with policies: [AccessPolicy]) throws(PolicyLoadErrors) -> PolicyEngine {
        let duplicates = PolicyLoader.duplicateNames(policies)
        guard duplicates.isEmpty else { throw PolicyLoadErrors(duplicates) }
        let engine = PolicyEngine(policies: try PolicyCompiler.compile(policies), options: current.value.options)
        current.value = engine
        return engine
    }
}

/// A value behind a lock, for state shared across threads without an actor hop on hot paths.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    /// Reads and changes the value under the lock, for a change that depends on the current value.
    func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&stored)
    }
}
