/// Everything the policy engine may know about one request, whichever door it came through.
///
/// The proxy fills it from the HTTP request (RequestInfo parsing, the authenticated caller) and,
/// for streams, from each command line or statement; the webhook fills it from an
/// `AdmissionRequest`. Policies see it through the CEL variables `request`, `object`, `oldObject`,
/// `exec`, `portForward` and `sql`.
public struct RequestAttributes: Sendable, Hashable {
    public var user: UserInfo
    /// The Kubernetes API verb: get, list, watch, create, update, patch, delete, deletecollection…
    public var verb: String
    /// The admission operation, when known (the webhook always knows it; the proxy derives it).
    public var operation: AccessPolicy.Operation?
    public var group: String
    public var version: String
    public var resource: String
    public var subresource: String
    /// Empty for cluster-scoped resources.
    public var namespace: String
    public var name: String
    public var source: Source
    /// The namespace's labels, for `namespaceSelector`; nil when unknown (a selector then fails
    /// closed: it does not match).
    public var namespaceLabels: [String: String]?
    public var object: CELValue?
    public var oldObject: CELValue?
    public var exec: Exec?
    public var portForward: PortForward?
    public var sql: SQL?

    public init(
        user: UserInfo, verb: String, operation: AccessPolicy.Operation? = nil, group: String = "",
        version: String = "v1",
        resource: String, subresource: String = "", namespace: String = "", name: String = "", source: Source = .proxy,
        namespaceLabels: [String: String]? = nil, object: CELValue? = nil, oldObject: CELValue? = nil,
        exec: Exec? = nil,
        portForward: PortForward? = nil, sql: SQL? = nil
    ) {
        self.user = user
        self.verb = verb
        self.operation = operation
        self.group = group
        self.version = version
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.source = source
        self.namespaceLabels = namespaceLabels
        self.object = object
        self.oldObject = oldObject
        self.exec = exec
        self.portForward = portForward
        self.sql = sql
    }

    public struct UserInfo: Sendable, Hashable {
        public var name: String
        public var uid: String
        public var groups: [String]
        public var extra: [String: [String]]

        public init(name: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:]) {
            self.name = name
            self.uid = uid
            self.groups = groups
            self.extra = extra
        }
    }

    /// Which door the request came through.
    public enum Source: String, Sendable, Hashable {
        case proxy
        case webhook
    }

    /// An exec or attach: the initial command, and for interactive sessions one typed line.
    public struct Exec: Sendable, Hashable {
        public var command: [String]
        public var container: String
        public var tty: Bool
        public var stdin: Bool
        /// One command line typed into an interactive session; empty for the initial check.
        public var line: String

        public init(command: [String], container: String, tty: Bool = false, stdin: Bool = false, line: String = "") {
            self.command = command
            self.container = container
            self.tty = tty
            self.stdin = stdin
            self.line = line
        }
    }

    public struct PortForward: Sendable, Hashable {
        public var port: Int
        /// `postgres`, `ssh`, `tcp`, as the port's policy names it.
        public var `protocol`: String

        public init(port: Int, protocol: String = "tcp") {
            self.port = port
            self.protocol = `protocol`
        }
    }

    public struct SQL: Sendable, Hashable {
        public var statement: String
        /// The statement's command keyword in upper case: SELECT, DELETE, DROP…
        public var command: String
        public var user: String
        public var database: String

        public init(statement: String, command: String, user: String = "", database: String = "") {
            self.statement = statement
            self.command = command
            self.user = user
            self.database = database
        }
    }

    /// `resource[.group][/subresource]`, as policies and messages name it.
    public var resourceDescription: String {
        (group.isEmpty ? resource : "\(resource).\(group)") + (subresource.isEmpty ? "" : "/\(subresource)")
    }
}
