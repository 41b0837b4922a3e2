import Foundation

extension RequestAttributes {
    // The CEL variables policies see for this request; shapes follow
    // `CELEnvironment.portcullisPolicy`. Maps are built from fields in ascending key order, the
    // order `CELMap(_:)` sorts a dictionary into, so iterating over them gives the same order.

    /// The `request` variable.
    var celRequest: CELValue {
        let groups = CELValue.list(user.groups.map(CELValue.string))
        let extra = CELMap(user.extra.mapValues { .list($0.map(CELValue.string)) })
        let userValue = CELMap(orderedFields: [
            ("extra", .map(extra)), ("groups", groups), ("name", .string(user.name)), ("uid", .string(user.uid)),
        ])
        let resourceValue = CELMap(orderedFields: [
            ("group", .string(group)), ("resource", .string(resource)), ("version", .string(version)),
        ])
        var fields: [(String, CELValue)] = [
            ("groups", groups), ("name", .string(name)), ("namespace", .string(namespace)),
        ]
        fields.reserveCapacity(10)
        if let namespaceLabels {
            fields.append(("namespaceLabels", .map(CELMap(namespaceLabels.mapValues(CELValue.string)))))
        }
        fields += [
            ("operation", .string(operation?.rawValue ?? "")), ("resource", .map(resourceValue)),
            ("source", .string(source.rawValue)), ("subresource", .string(subresource)), ("user", .map(userValue)),
            ("verb", .string(verb)),
        ]
        return .map(CELMap(orderedFields: fields))
    }

    /// The `exec` variable, when the request is an exec or attach.
    var celExec: CELValue? {
        exec.map { exec in
            .map(
                CELMap(orderedFields: [
                    ("command", .list(exec.command.map(CELValue.string))), ("container", .string(exec.container)),
                    ("line", .string(exec.line)), ("stdin", .bool(exec.stdin)), ("tty", .bool(exec.tty)),
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
    let request: RequestAttributes
    let now: Date
    /// The current policy's `variables`, set by the engine before its expressions run.
    var variables: CELValue?
    private var requestValue: CELValue?
    private var execValue: CELValue??
    private var nowValue: CELValue??

    init(request: RequestAttributes, now: Date) {
        self.request = request
        self.now = now
    }

    /// The value of the variable `name`, or nil when this request has none.
    mutating func value(of name: String) -> CELValue? {
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
        case "portForward": return request.celPortForward
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
