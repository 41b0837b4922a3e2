import Foundation

extension RequestAttributes {
    // The CEL variables policies see for this request; shapes follow
    // `CELEnvironment.portcullisPolicy`. Maps are built from fields in ascending key order, the
    // order `CELMap(_:)` sorts a dictionary into, so iterating over them gives the same order.

    // The records' keys are those of `CELRecordShape.request`, `.user`, `.resource` and `.exec`.

    /// The `request` variable.
    var celRequest: CELValue {
        let groups = CELValue.list(user.groups.map(CELValue.string))
        let extra = user.extra.isEmpty ? CELMap.empty : CELMap(user.extra.mapValues { .list($0.map(CELValue.string)) })
        let userValue = CELMap(
            shape: .user, values: [.map(extra), groups, .string(user.name), .string(user.uid)])
        let resourceValue = CELMap(
            shape: .resource, values: [.string(group), .string(resource), .string(version)])
        // Appended one by one into the final capacity: no array literal to allocate and copy.
        var values: [CELValue] = []
        let shape = namespaceLabels == nil ? CELRecordShape.request : .requestWithLabels
        values.reserveCapacity(shape.keys.count)
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
        return .map(CELMap(shape: shape, values: values))
    }

    /// The `exec` variable, when the request is an exec or attach.
    var celExec: CELValue? {
        exec.map { exec in
            .map(
                CELMap(
                    shape: .exec,
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
    /// `request.user.groups`, which several expressions of a request read.
    private var groupsValue: CELValue?

    init(now: Date) { self.now = now }

    /// What a program asks for: a variable, or a request path read from the request in place
    /// rather than from the variable's record.
    mutating func value(of input: CELInput, for request: RequestAttributes) -> CELValue? {
        switch input {
        case .variable(let name): value(of: name, for: request)
        case .path(let path): value(at: path, for: request)
        }
    }

    /// The value `path` selects from the variables `celRequest` and `celExec` build (a test
    /// compares them); nil for an `exec` path when the request has no exec, as `exec` is unbound.
    mutating func value(at path: CELRequestPath, for request: RequestAttributes) -> CELValue? {
        switch path {
        case .requestGroups, .requestUserGroups:
            if let groupsValue { return groupsValue }
            let groups = CELValue.list(request.user.groups.map(CELValue.string))
            groupsValue = groups
            return groups
        case .requestName: return .string(request.name)
        case .requestNamespace: return .string(request.namespace)
        case .requestOperation: return .string(request.operation?.rawValue ?? "")
        case .requestSource: return .string(request.source.rawValue)
        case .requestSubresource: return .string(request.subresource)
        case .requestVerb: return .string(request.verb)
        case .requestUserName: return .string(request.user.name)
        case .requestUserUID: return .string(request.user.uid)
        case .requestResourceGroup: return .string(request.group)
        case .requestResourceResource: return .string(request.resource)
        case .requestResourceVersion: return .string(request.version)
        case .execCommand: return request.exec.map { .list($0.command.map(CELValue.string)) }
        case .execContainer: return request.exec.map { .string($0.container) }
        case .execLine: return request.exec.map { .string($0.line) }
        case .execStdin: return request.exec.map { .bool($0.stdin) }
        case .execTty: return request.exec.map { .bool($0.tty) }
        }
    }

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
