/// A field path of a Portcullis request variable (`request.namespace`, `request.user.groups`,
/// `exec.line`) that the engine can answer from the request directly. A program that reads such a
/// path asks for it before it runs (see `CELInput`), so that a request whose expressions read only
/// paths never builds the `request` record, its `user` and `resource` records, or frees them.
/// The answer must be the value the path selects from the variable; a caller that does not answer
/// (nil) makes the program select it from the variable, as any other chain.
enum CELRequestPath: Int, CaseIterable, Sendable {
    case requestGroups, requestName, requestNamespace, requestOperation, requestSource, requestSubresource
    case requestVerb, requestUserGroups, requestUserName, requestUserUID
    case requestResourceGroup, requestResourceResource, requestResourceVersion
    case execCommand, execContainer, execLine, execStdin, execTty

    /// The global variable and the fields the path selects, in the order of the cases.
    private static let names: [(global: String, fields: [String])] = [
        ("request", ["groups"]), ("request", ["name"]), ("request", ["namespace"]), ("request", ["operation"]),
        ("request", ["source"]), ("request", ["subresource"]), ("request", ["verb"]),
        ("request", ["user", "groups"]), ("request", ["user", "name"]), ("request", ["user", "uid"]),
        ("request", ["resource", "group"]), ("request", ["resource", "resource"]),
        ("request", ["resource", "version"]),
        ("exec", ["command"]), ("exec", ["container"]), ("exec", ["line"]), ("exec", ["stdin"]), ("exec", ["tty"]),
    ]

    /// The path `global.fields…`, when it is one of these.
    init?(global: String, fields: [String]) {
        guard let position = Self.names.firstIndex(where: { $0.global == global && $0.fields == fields }) else {
            return nil
        }
        self.init(rawValue: position)
    }

    /// The global variable the path starts from.
    var global: String { Self.names[rawValue].global }
    /// The fields it selects.
    var fields: [String] { Self.names[rawValue].fields }
}

/// What a program asks its caller for before it runs.
enum CELInput {
    /// The value of a global variable, nil when it has none.
    case variable(String)
    /// The value at a request path, or nil to have it selected from the path's variable.
    case path(CELRequestPath)
}
