import Foundation

extension RequestAttributes {
    // The CEL variables policies see for this request; shapes follow
    // `CELEnvironment.portcullisPolicy`. Maps are built from fields in ascending key order, the
    // order `CELMap(_:)` sorts a dictionary into, so iterating over them gives the same order.

    private static let userKeys: [CELValue] = ["extra", "groups", "name", "uid"]
    private static let resourceKeys: [CELValue] = ["group", "resource", "version"]
    private static let requestKeys: [CELValue] = [
        "groups", "name", "namespace", "operation", "resource", "source", "subresource", "user", "verb",
    ]
    private static let requestKeysWithLabels: [CELValue] = [
        "groups", "name", "namespace", "namespaceLabels", "operation", "resource", "source", "subresource", "user",
        "verb",
    ]
    private static let execKeys: [CELValue] = ["command", "container", "line", "stdin", "tty"]

    /// The `request` variable.
    var celRequest: CELValue {
        let groups = CELValue.list(user.groups.map(CELValue.string))
        let extra = user.extra.isEmpty ? CELMap.empty : CELMap(user.extra.mapValues { .list($0.map(CELValue.string)) })
        let userValue = CELMap(
            recordKeys: Self.userKeys, values: [.map(extra), groups, .string(user.name), .string(user.uid)])
        let resourceValue = CELMap(
            recordKeys: Self.resourceKeys, values: [.string(group), .string(resource), .string(version)])
        // Appended one by one into the final capacity: no array literal to allocate and copy.
        var values: [CELValue] = []
        values.reserveCapacity(namespaceLabels == nil ? Self.requestKeys.count : Self.requestKeysWithLabels.count)
        values.append(groups)
        values.append(.string(name))
        values.append(.string(namespace))
        if let namespaceLabels { values.append(.map(CELMap(namespaceLabels.mapValues(CELValue.string)))) }
        values.append(.string(operation?.rawValue ?? ""))
        values.append(.map(resourceValue))
        values.append(.string(source.rawValue))
        values.append(.string(subresource))
        values.append(.map(userValue))
        values.append(.string(verb))
        return .map(
            CELMap(recordKeys: namespaceLabels == nil ? Self.requestKeys : Self.requestKeysWithLabels, values: values))
    }

    /// The `exec` variable, when the request is an exec or attach.
    var celExec: CELValue? {
        exec.map { exec in
            .map(
                CELMap(
                    recordKeys: Self.execKeys,
                    values: [
                        .list(exec.command.map(CELValue.string)), .string(exec.container), .string(exec.line),
                        .bool(exec.stdin), .bool(exec.tty),
                    ]))
        }
    }

    /// The `portForward` variable, when the request is a port-forward.
    var celPortForward: CELValue? {
        portForward.map { portForward in
            .map(
                CELMap(orderedFields: [
                    ("port", .int(Int64(portForward.port))), ("protocol", .string(portForward.protocol)),
                ]))
        }
    }

    /// The `sql` variable, when the request is a SQL statement.
    var celSQL: CELValue? {
        sql.map { sql in
            .map(
                CELMap(orderedFields: [
                    ("command", .string(sql.command)), ("database", .string(sql.database)),
                    ("statement", .string(sql.statement)), ("user", .string(sql.user)),
                ]))
        }
    }
}

/// The CEL variables of one request, each built the first time an expression reads it: most
/// expressions read only `request`, and many requests reach no expression at all.
struct RequestBindings {
    let now: Date
    /// The current policy's `variables`, set by the engine before its expressions run.
    var variables: CELValue?
    private var requestValue: CELValue?
    private var execValue: CELValue??
    private var nowValue: CELValue??

    init(now: Date) { self.now = now }

    /// The value of the variable `name` for `request` (always the same request), or nil when it
    /// has none.
    mutating func value(of name: String, for request: RequestAttributes) -> CELValue? {
        switch name {
        case "request":
            if let requestValue { return requestValue }
            requestValue = request.celRequest
            return requestValue
        case "object": return request.object ?? .null
        case "oldObject": return request.oldObject ?? .null
        case "exec":
            if let execValue { return execValue }
            execValue = .some(request.celExec)
            return execValue ?? nil
        // null, not unbound, on a port-forward's request-level check: the port is known only per
        // connection, so port rules are written `portForward != null && portForward.port == …`.
        case "portForward": return request.celPortForward ?? .null
        case "sql": return request.celSQL
        case "variables": return variables
        case "now":
            if let nowValue { return nowValue }
            nowValue = .some(Self.timestamp(now))
            return nowValue ?? nil
        default: return nil
        }
    }

    private static func timestamp(_ date: Date) -> CELValue? {
        let seconds = date.timeIntervalSince1970
        let timestamp = try? CELTimestamp(
            seconds: Int64(seconds.rounded(.down)),
            nanos: Int32((seconds.truncatingRemainder(dividingBy: 1) * 1e9).rounded(.down)))
        return timestamp.map(CELValue.timestamp)
    }
}
