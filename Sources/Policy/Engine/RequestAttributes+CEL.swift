extension RequestAttributes {
    /// The CEL variables policies see for this request (`now` and `variables` are added by the
    /// engine). Shapes follow `CELEnvironment.portcullisPolicy`.
    var celBindings: [String: CELValue] {
        let groups = CELValue.list(user.groups.map(CELValue.string))
        let extra = CELMap(user.extra.mapValues { .list($0.map(CELValue.string)) })
        var request: [String: CELValue] = [
            "user": .map(
                CELMap(["name": .string(user.name), "uid": .string(user.uid), "groups": groups, "extra": .map(extra)])),
            "groups": groups,
            "verb": .string(verb),
            "operation": .string(operation?.rawValue ?? ""),
            "resource": .map(
                CELMap(["group": .string(group), "version": .string(version), "resource": .string(resource)])),
            "subresource": .string(subresource),
            "namespace": .string(namespace),
            "name": .string(name),
            "source": .string(source.rawValue),
        ]
        if let namespaceLabels {
            request["namespaceLabels"] = .map(CELMap(namespaceLabels.mapValues(CELValue.string)))
        }
        var bindings: [String: CELValue] = [
            "request": .map(CELMap(request)),
            "object": object ?? .null,
            "oldObject": oldObject ?? .null,
        ]
        if let exec {
            bindings["exec"] = .map(
                CELMap([
                    "command": .list(exec.command.map(CELValue.string)), "container": .string(exec.container),
                    "tty": .bool(exec.tty), "stdin": .bool(exec.stdin), "line": .string(exec.line),
                ]))
        }
        if let portForward {
            bindings["portForward"] = .map(
                CELMap(["port": .int(Int64(portForward.port)), "protocol": .string(portForward.protocol)]))
        }
        if let sql {
            bindings["sql"] = .map(
                CELMap([
                    "statement": .string(sql.statement), "command": .string(sql.command), "user": .string(sql.user),
                    "database": .string(sql.database),
                ]))
        }
        return bindings
    }
}
