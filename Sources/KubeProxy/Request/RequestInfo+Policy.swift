import Policy

extension RequestInfo {
    /// Whether the request opens a stream (exec, attach, port-forward), which policies see as
    /// `create` on the subresource whichever HTTP method the client used (GET for WebSocket,
    /// POST for SPDY), like the webhook's CONNECT.
    public var isStream: Bool {
        isResourceRequest && apiGroup.isEmpty && resource == "pods"
            && ["exec", "attach", "portforward"].contains(subresource)
    }

    /// The policy attributes of this request for `user`.
    public func attributes(user: RequestAttributes.UserInfo, query: [String: [String]]) -> RequestAttributes {
        var attributes = RequestAttributes(
            user: user, verb: isStream ? "create" : verb, operation: operation, group: apiGroup, version: apiVersion,
            resource: isResourceRequest ? resource : path, subresource: subresource, namespace: namespace, name: name,
            source: .proxy)
        if isStream, subresource != "portforward" {
            let parameters = StreamParameters(query: query)
            attributes.exec = .init(
                command: parameters.command, container: parameters.container, tty: parameters.tty,
                stdin: parameters.stdin)
        }
        return attributes
    }

    /// The admission operation this verb amounts to, so one policy can match both doors.
    var operation: AccessPolicy.Operation? {
        if isStream { return .connect }
        switch verb {
        case "create": return .create
        case "update", "patch": return .update
        case "delete", "deletecollection": return .delete
        default: return nil
        }
    }
}
