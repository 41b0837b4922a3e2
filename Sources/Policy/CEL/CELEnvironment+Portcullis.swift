/// The environment of Portcullis `AccessPolicy` expressions (see `docs/design.md`, "Policy model").
///
/// Variables, all JSON-shaped maps at run time:
/// - `request`: `user` {`name`, `uid`, `groups`, `extra`}, `groups`, `verb`, `operation`,
///   `resource` {`group`, `version`, `resource`}, `subresource`, `namespace`, `name`, `source`
///   (`proxy` or `webhook`); other fields are allowed and typed `dyn`.
/// - `object`, `oldObject`: the Kubernetes object (`dyn`).
/// - `exec`: `command` (list of strings), `container`, `tty`, `stdin`, `line`.
/// - `portForward`: `port` (int), `protocol`.
/// - `sql`: `statement`, `command` (the statement's first keyword).
/// - `variables`: named values, as in ValidatingAdmissionPolicy; `params`: policy parameters;
///   `now`: the evaluation time.
extension CELEnvironment {
    public static let requestType = CELObjectType(
        name: "portcullis.Request",
        fields: [
            "user": .object(
                CELObjectType(
                    name: "portcullis.User",
                    fields: [
                        "name": .string, "uid": .string, "groups": .list(.string),
                        "extra": .map(key: .string, value: .list(.string)),
                    ], isOpen: true)),
            "groups": .list(.string),
            "verb": .string,
            "operation": .string,
            "resource": .object(
                CELObjectType(
                    name: "portcullis.GroupVersionResource",
                    fields: ["group": .string, "version": .string, "resource": .string], isOpen: true)),
            "subresource": .string,
            "namespace": .string,
            "name": .string,
            "source": .string,
        ], isOpen: true)

    public static let execType = CELObjectType(
        name: "portcullis.Exec",
        fields: ["command": .list(.string), "container": .string, "tty": .bool, "stdin": .bool, "line": .string],
        isOpen: true)

    public static let portForwardType = CELObjectType(
        name: "portcullis.PortForward", fields: ["port": .int, "protocol": .string], isOpen: true)

    public static let sqlType = CELObjectType(
        name: "portcullis.SQL", fields: ["statement": .string, "command": .string], isOpen: true)

    /// The variables of `portcullisPolicy`.
    public static let portcullisVariables: [String: CELType] = [
        "request": .object(requestType),
        "object": .dyn,
        "oldObject": .dyn,
        "exec": .object(execType),
        "portForward": .object(portForwardType),
        "sql": .object(sqlType),
        "variables": .map(key: .string, value: .dyn),
        "params": .dyn,
        "now": .timestamp,
    ]

    /// The environment Portcullis policies compile in, with the checker on.
    public static let portcullisPolicy = CELEnvironment(variables: portcullisVariables)
}
