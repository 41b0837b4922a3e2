import Policy

/// A policy set shaped like a real multi-team cluster's: 100 policies of three rules each (300
/// rules), over the resources admission sees most (pods, deployments, configmaps, exec). A third
/// apply cluster-wide, the rest to one team's namespaces; their rules look at labels, images,
/// names and exec commands, and rarely match, as in a cluster where most requests are fine.
enum GeneratedPolicies {
    static func yaml(count: Int = 100) -> String {
        (0..<count).map(policy).joined(separator: "\n---\n")
    }

    static func load(count: Int = 100) throws -> [AccessPolicy] {
        try PolicyLoader.parse(yaml(count: count), file: "generated.yaml")
    }

    private static func policy(_ index: Int) -> String {
        let namespaces = index % 3 == 0 ? "" : "namespaces: [\"team-\(index)\", \"team-\(index)-*\"], "
        let header = """
            apiVersion: portcullis.dev/v1alpha1
            kind: AccessPolicy
            metadata: {name: generated-\(index)}
            spec:
            """
        switch index % 4 {
        case 0:
            return header + """

                  match: {\(namespaces)resources: [pods], operations: [CREATE, UPDATE]}
                  variables:
                  - {name: containers, expression: "has(object.spec.containers) ? object.spec.containers : []"}
                  rules:
                  - {name: retired-registry, action: Deny, expression: "variables.containers.exists(c, has(c.image) && c.image.startsWith('registry-\(index).example.com/'))", message: "registry-\(index) is retired"}
                  - {name: no-latest, action: Warn, expression: "variables.containers.exists(c, has(c.image) && c.image.endsWith(':latest-\(index)'))", message: "pin the image"}
                  - {name: retired-team, action: Deny, expression: "has(object.metadata.labels) && 'team' in object.metadata.labels && object.metadata.labels['team'] == 'retired-\(index)'", message: "team retired-\(index) is gone"}
                """
        case 1:
            return header + """

                  match: {\(namespaces)resources: [deployments.apps], operations: [CREATE, UPDATE]}
                  rules:
                  - {name: replicas, action: Deny, expression: "has(object.spec.replicas) && object.spec.replicas > \(100 + index)", message: "at most \(100 + index) replicas"}
                  - {name: owner, action: Warn, expression: "has(object.metadata.annotations) && 'owner-\(index)' in object.metadata.annotations && object.metadata.annotations['owner-\(index)'] == ''", message: "empty owner"}
                  - {name: legacy-name, action: Deny, expression: "object.metadata.name.startsWith('legacy-\(index)-')", message: "legacy-\(index) names are reserved"}
                """
        case 2:
            return header + """

                  match: {\(namespaces)resources: [configmaps], operations: [CREATE, UPDATE]}
                  rules:
                  - {name: reserved, action: Deny, expression: "object.metadata.name.startsWith('reserved-\(index)-')", message: "reserved-\(index) names are the platform's"}
                  - {name: big, action: Warn, expression: "has(object.data) && size(object.data) > \(200 + index)", message: "large configmap"}
                  - {name: frozen, action: Deny, expression: "request.operation == 'UPDATE' && has(oldObject.metadata.labels) && 'frozen-\(index)' in oldObject.metadata.labels", message: "frozen"}
                """
        default:
            return header + """

                  match: {\(namespaces)resources: [pods/exec, pods/attach]}
                  rules:
                  - {name: tool, action: Deny, expression: "exec.command.exists(c, c == 'tool-\(index)')", message: "tool-\(index) is not allowed"}
                  - {name: debugger, action: Warn, expression: "exec.command.join(' ').matches('^gdb-\(index)( |$)')", message: "debugger attached"}
                  - {name: shell, action: Deny, expression: "request.user.name == 'contractor-\(index)' && exec.tty", message: "no interactive shells"}
                """
        }
    }
}
