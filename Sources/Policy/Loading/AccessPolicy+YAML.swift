import Yams

extension AccessPolicy {
    /// Decodes one `AccessPolicy` document, appending every problem to `errors`; returns nil when
    /// the document has errors (a policy is never half-read).
    static func decode(_ document: YAMLNodeReader, errors: inout [PolicyLoadError]) -> AccessPolicy? {
        let errorCount = errors.count
        guard let root = document.mapping(allowed: ["apiVersion", "kind", "metadata", "spec"], errors: &errors) else {
            return nil
        }
        if let apiVersion = root.required(
            "apiVersion", errors: &errors, hint: "add apiVersion: \(PolicyAPI.apiVersion)"),
            let text = apiVersion.string(errors: &errors), text != PolicyAPI.apiVersion
        {
            errors.append(
                apiVersion.error(
                    .invalidValue, "apiVersion \"\(text)\" is not supported", hint: "use \(PolicyAPI.apiVersion)"))
        }
        if let kind = root.required("kind", errors: &errors), let text = kind.string(errors: &errors),
            text != "AccessPolicy"
        {
            errors.append(kind.error(.invalidValue, "kind \"\(text)\" is not AccessPolicy"))
        }
        var name = ""
        if let metadata = root.required("metadata", errors: &errors)?.mapping(
            allowed: [
                "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
                "creationTimestamp", "managedFields", "finalizers", "ownerReferences", "selfLink", "deletionTimestamp",
                "deletionGracePeriodSeconds", "generateName",
            ],
            errors: &errors)
        {
            if let nameNode = metadata.required("name", errors: &errors), let text = nameNode.string(errors: &errors) {
                if isDNSSubdomain(text) {
                    name = text
                } else {
                    errors.append(
                        nameNode.error(
                            .invalidValue, "metadata.name \"\(text)\" is not a valid Kubernetes name",
                            hint: "use lower-case letters, digits, '-' and '.', at most 253 characters"))
                }
            }
        }
        guard
            let spec = root.required("spec", errors: &errors)?.mapping(
                allowed: ["mode", "failurePolicy", "match", "matchConditions", "variables", "rules"], errors: &errors)
        else { return nil }

        var mode = Mode.enforce
        if let node = spec.value("mode"), let text = node.string(errors: &errors) {
            if let parsed = Mode(rawValue: text) {
                mode = parsed
            } else {
                errors.append(node.enumError("mode", text, Mode.allCases.map(\.rawValue)))
            }
        }
        var failurePolicy = FailurePolicy.fail
        if let node = spec.value("failurePolicy"), let text = node.string(errors: &errors) {
            if let parsed = FailurePolicy(rawValue: text) {
                failurePolicy = parsed
            } else {
                errors.append(node.enumError("failurePolicy", text, FailurePolicy.allCases.map(\.rawValue)))
            }
        }
        let match = spec.value("match").flatMap { decodeMatch($0, errors: &errors) } ?? Match()
        let matchConditions = spec.value("matchConditions").map { decodeNamedExpressions($0, errors: &errors) } ?? []
        let variables = spec.value("variables").map { decodeNamedExpressions($0, errors: &errors) } ?? []
        var rules: [Rule] = []
        if let rulesNode = spec.required("rules", errors: &errors, hint: "a policy needs at least one rule"),
            let items = rulesNode.sequence(errors: &errors)
        {
            if items.isEmpty {
                errors.append(rulesNode.error(.invalidValue, "spec.rules is empty", hint: "add a rule"))
            }
            var seen: [String: SourceLocation] = [:]
            for item in items {
                guard let rule = decodeRule(item, errors: &errors) else { continue }
                if let first = seen[rule.name] {
                    errors.append(
                        PolicyLoadError(
                            .duplicateName, at: rule.location, "duplicate rule name \"\(rule.name)\"",
                            hint: "rule names must be unique within a policy; the first is at \(first)"))
                }
                seen[rule.name] = rule.location
                rules.append(rule)
            }
        }
        guard errors.count == errorCount else { return nil }
        return AccessPolicy(
            name: name, location: document.location, mode: mode, failurePolicy: failurePolicy, match: match,
            matchConditions: matchConditions,
            variables: variables, rules: rules)
    }

    private static func decodeMatch(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> Match? {
        guard
            let map = node.mapping(
                allowed: ["subjects", "namespaces", "namespaceSelector", "resources", "verbs", "operations"],
                errors: &errors)
        else { return nil }
        var match = Match()
        if let subjects = map.value("subjects")?.sequence(errors: &errors) {
            match.subjects = subjects.compactMap { decodeSubject($0, errors: &errors) }
        }
        if let namespaces = map.value("namespaces") {
            match.namespaces = globs(namespaces, errors: &errors)
        }
        if let selector = map.value("namespaceSelector") {
            match.namespaceSelector = decodeLabelSelector(selector, errors: &errors)
        }
        if let resources = map.value("resources")?.strings(errors: &errors) {
            for (text, location) in resources {
                do {
                    match.resources.append(try ResourcePattern(text))
                } catch {
                    errors.append(PolicyLoadError(.invalidValue, at: location, error.message, hint: error.hint))
                }
            }
        }
        if let verbs = map.value("verbs") {
            for (glob, location) in globsWithLocations(verbs, errors: &errors) {
                match.verbs.append(glob)
                if let verb = glob.literal, !knownVerbs.contains(verb) {
                    errors.append(
                        PolicyLoadError(
                            .invalidValue, at: location, "unknown verb \"\(verb)\"",
                            hint: closestMatch(to: verb, among: knownVerbs).map { "did you mean \"\($0)\"?" }
                                ?? "verbs: \(knownVerbs.joined(separator: ", "))"))
                }
            }
        }
        if let operations = map.value("operations")?.strings(errors: &errors) {
            for (text, location) in operations {
                if let operation = Operation(rawValue: text) {
                    match.operations.append(operation)
                } else {
                    errors.append(
                        PolicyLoadError(
                            .invalidValue, at: location, "unknown operation \"\(text)\"",
                            hint: "operations: \(Operation.allCases.map(\.rawValue).joined(separator: ", "))"))
                }
            }
        }
        return match
    }

    /// The request verbs of the Kubernetes API, plus `*`.
    static let knownVerbs = [
        "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy", "connect",
        "impersonate", "approve", "bind", "escalate",
    ]

    private static func decodeSubject(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> SubjectPattern? {
        guard let map = node.mapping(allowed: ["user", "group", "serviceAccount"], errors: &errors) else { return nil }
        let given = ["user", "group", "serviceAccount"].filter { map.has($0) }
        guard given.count == 1, let key = given.first, let value = map.value(key) else {
            errors.append(
                node.error(
                    .invalidValue, "a subject names exactly one of user, group or serviceAccount",
                    hint: "split it into one list item per subject"))
            return nil
        }
        guard let text = value.string(errors: &errors), let glob = value.glob(text, errors: &errors) else { return nil }
        switch key {
        case "user": return .user(glob)
        case "group": return .group(glob)
        default:
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let namespace = value.glob(String(parts[0]), errors: &errors),
                let name = value.glob(String(parts[1]), errors: &errors)
            else {
                errors.append(
                    value.error(
                        .invalidValue, "serviceAccount \"\(text)\" is not namespace/name",
                        hint: "e.g. ci/deployer or ci/*"))
                return nil
            }
            return .serviceAccount(namespace: namespace, name: name)
        }
    }

    private static func decodeLabelSelector(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> LabelSelector? {
        guard let map = node.mapping(allowed: ["matchLabels", "matchExpressions"], errors: &errors) else { return nil }
        var selector = LabelSelector()
        if let labelsNode = map.value("matchLabels"), case .mapping(let mapping) = labelsNode.node {
            for (key, value) in mapping {
                guard let k = key.string, let v = value.string else {
                    errors.append(labelsNode.error(.wrongType, "matchLabels must map strings to strings"))
                    continue
                }
                selector.matchLabels[k] = v
            }
        }
        if let expressions = map.value("matchExpressions")?.sequence(errors: &errors) {
            for item in expressions {
                guard let requirement = item.mapping(allowed: ["key", "operator", "values"], errors: &errors),
                    let key = requirement.required("key", errors: &errors)?.string(errors: &errors),
                    let operatorNode = requirement.required("operator", errors: &errors),
                    let operatorText = operatorNode.string(errors: &errors)
                else { continue }
                guard let op = LabelSelector.Requirement.Operator(rawValue: operatorText) else {
                    errors.append(
                        operatorNode.enumError(
                            "operator", operatorText, LabelSelector.Requirement.Operator.allCases.map(\.rawValue)))
                    continue
                }
                let values = requirement.value("values")?.strings(errors: &errors)?.map(\.value) ?? []
                selector.matchExpressions.append(.init(key: key, operator: op, values: values))
            }
        }
        return selector
    }

    private static func decodeNamedExpressions(
        _ node: YAMLNodeReader, errors: inout [PolicyLoadError]
    ) -> [NamedExpression] {
        guard let items = node.sequence(errors: &errors) else { return [] }
        var seen = Set<String>()
        var result: [NamedExpression] = []
        for item in items {
            guard let map = item.mapping(allowed: ["name", "expression"], errors: &errors),
                let nameNode = map.required("name", errors: &errors), let name = nameNode.string(errors: &errors),
                let expression = map.required("expression", errors: &errors)?.expression(errors: &errors)
            else { continue }
            if !seen.insert(name).inserted {
                errors.append(nameNode.error(.duplicateName, "duplicate name \"\(name)\" in \(node.path)"))
            }
            if !isCELIdentifier(name) && node.path.hasSuffix("variables") {
                errors.append(
                    nameNode.error(
                        .invalidValue, "variable name \"\(name)\" is not a CEL identifier",
                        hint: "use letters, digits and '_', starting with a letter; refer to it as variables.\(name)"))
            }
            result.append(NamedExpression(name: name, expression: expression))
        }
        return result
    }

    private static func decodeRule(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> Rule? {
        let errorCount = errors.count
        guard
            let map = node.mapping(
                allowed: ["name", "action", "expression", "message", "messageExpression", "review", "mask", "patch"],
                errors: &errors)
        else { return nil }
        let name = map.required("name", errors: &errors)?.string(errors: &errors) ?? ""
        var action = Action.deny
        if let actionNode = map.required("action", errors: &errors), let text = actionNode.string(errors: &errors) {
            if let parsed = Action(rawValue: text) {
                action = parsed
            } else {
                errors.append(actionNode.enumError("action", text, Action.allCases.map(\.rawValue)))
            }
        }
        let expression = map.value("expression")?.expression(errors: &errors)
        let message = map.string("message", errors: &errors)
        let messageExpression = map.value("messageExpression")?.expression(errors: &errors)
        if (action == .deny || action == .review || action == .warn) && message == nil && messageExpression == nil {
            errors.append(
                node.error(
                    .missingKey, "rule \"\(name)\" (\(action.rawValue)) has no message",
                    hint: "add message: or messageExpression: so people know why they were stopped"))
        }
        var review: Review?
        if let reviewNode = map.value("review") {
            review = decodeReview(reviewNode, errors: &errors)
        } else if action == .review {
            errors.append(
                node.error(
                    .missingKey, "rule \"\(name)\" is a Review without review.approvers",
                    hint: "add review: {approvers: {groups: [sre]}, grantFor: 1h}"))
        }
        var mask: Mask?
        if let maskNode = map.value("mask") {
            mask = decodeMask(maskNode, errors: &errors)
        } else if action == .mask {
            errors.append(
                node.error(
                    .missingKey, "rule \"\(name)\" is a Mask without mask", hint: "add mask: {fields: [\"data.*\"]}"))
        }
        var patch: [PatchOperation] = []
        if let patchNode = map.value("patch") {
            patch = decodePatch(patchNode, errors: &errors)
        } else if action == .mutate {
            errors.append(
                node.error(
                    .missingKey, "rule \"\(name)\" is a Mutate without patch",
                    hint: "add patch: [{op: add, path: /metadata/labels/team, value: unassigned}]"))
        }
        guard errors.count == errorCount else { return nil }
        return Rule(
            name: name, location: node.location, action: action, expression: expression, message: message,
            messageExpression: messageExpression, review: review, mask: mask, patch: patch)
    }

    private static func decodeReview(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> Review? {
        guard let map = node.mapping(allowed: ["approvers", "grantFor"], errors: &errors) else { return nil }
        var review = Review()
        if let approvers = map.required("approvers", errors: &errors)?.mapping(
            allowed: ["users", "groups"], errors: &errors)
        {
            review.approverUsers = approvers.value("users").map { globs($0, errors: &errors) } ?? []
            review.approverGroups = approvers.value("groups").map { globs($0, errors: &errors) } ?? []
            if review.approverUsers.isEmpty && review.approverGroups.isEmpty {
                errors.append(
                    approvers.reader.error(.invalidValue, "review.approvers names nobody", hint: "add users or groups"))
            }
        }
        if let grant = map.value("grantFor"), let text = grant.string(errors: &errors) {
            if let duration = parseGoDuration(text), duration > .zero {
                review.grantFor = duration
            } else {
                errors.append(
                    grant.error(.invalidValue, "grantFor \"\(text)\" is not a duration", hint: "e.g. 30m, 1h, 1h30m"))
            }
        }
        return review
    }

    private static func decodePatch(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> [PatchOperation] {
        guard let items = node.sequence(errors: &errors) else { return [] }
        return items.compactMap { item -> PatchOperation? in
            guard let map = item.mapping(allowed: ["op", "path", "value", "valueExpression"], errors: &errors),
                let opNode = map.required("op", errors: &errors), let opText = opNode.string(errors: &errors),
                let pathNode = map.required("path", errors: &errors), let pathText = pathNode.string(errors: &errors)
            else { return nil }
            guard let operation = PatchOperation.Operation(rawValue: opText) else {
                errors.append(opNode.enumError("op", opText, PatchOperation.Operation.allCases.map(\.rawValue)))
                return nil
            }
            let path: JSONPointer
            do throws(JSONPointer.SyntaxError) {
                path = try JSONPointer(pathText)
            } catch {
                errors.append(pathNode.error(.invalidValue, error.message))
                return nil
            }
            let value = map.value("value").map { CELValue(yaml: $0.node) }
            let valueExpression = map.value("valueExpression")?.expression(errors: &errors)
            switch (operation, value != nil, valueExpression != nil) {
            case (.remove, false, false), (.add, true, false), (.add, false, true), (.replace, true, false),
                (.replace, false, true):
                return PatchOperation(operation: operation, path: path, value: value, valueExpression: valueExpression)
            case (.remove, _, _):
                errors.append(item.error(.invalidValue, "a remove operation takes no value"))
            default:
                errors.append(
                    item.error(
                        .invalidValue, "an \(opText) operation needs exactly one of value or valueExpression",
                        hint: "value: is a literal; valueExpression: is CEL, e.g. \"object.metadata.name + '-x'\""))
            }
            return nil
        }
    }

    private static func decodeMask(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> Mask? {
        guard let map = node.mapping(allowed: ["fields", "patterns", "columns", "replacement"], errors: &errors) else {
            return nil
        }
        var mask = Mask()
        for (text, location) in map.value("fields")?.strings(errors: &errors) ?? [] {
            do {
                mask.fields.append(try FieldPath(text))
            } catch {
                errors.append(
                    PolicyLoadError(
                        .invalidValue,
                        at: SourceLocation(
                            file: location.file, line: location.line, column: location.column + error.column - 1),
                        error.message, hint: "e.g. data.*, spec.containers[*].env[*].value"))
            }
        }
        for (text, location) in map.value("patterns")?.strings(errors: &errors) ?? [] {
            if let problem = OutputPattern.validate(text) {
                errors.append(PolicyLoadError(.invalidValue, at: location, "mask pattern \"\(text)\": \(problem)"))
            } else {
                mask.patterns.append(text)
            }
        }
        mask.columns = map.value("columns")?.strings(errors: &errors)?.map(\.value) ?? []
        if let replacement = map.string("replacement", errors: &errors) { mask.replacement = replacement }
        if !["fields", "patterns", "columns"].contains(where: map.has) {
            errors.append(
                node.error(.invalidValue, "mask names nothing to hide", hint: "add fields, patterns or columns"))
        }
        return mask
    }

    private static func globs(_ node: YAMLNodeReader, errors: inout [PolicyLoadError]) -> [Glob] {
        globsWithLocations(node, errors: &errors).map(\.glob)
    }

    private static func globsWithLocations(
        _ node: YAMLNodeReader, errors: inout [PolicyLoadError]
    ) -> [(glob: Glob, location: SourceLocation)] {
        (node.strings(errors: &errors) ?? []).compactMap { text, location in
            node.globAt(text, location, errors: &errors).map { ($0, location) }
        }
    }
}

extension YAMLNodeReader {
    func enumError(_ field: String, _ value: String, _ allowed: [String]) -> PolicyLoadError {
        error(
            .invalidValue, "\(field) \"\(value)\" is not one of \(allowed.joined(separator: ", "))",
            hint: closestMatch(to: value, among: allowed).map { "did you mean \"\($0)\"?" } ?? "")
    }

    func glob(_ text: String, errors: inout [PolicyLoadError]) -> Glob? {
        globAt(text, contentLocation, errors: &errors)
    }

    func globAt(_ text: String, _ at: SourceLocation, errors: inout [PolicyLoadError]) -> Glob? {
        do {
            return try Glob(text)
        } catch {
            let position = SourceLocation(file: at.file, line: at.line, column: at.column + error.column - 1)
            errors.append(
                PolicyLoadError(
                    .invalidGlob, at: position, error.message, hint: "globs use * and ?, [a-z] for sets; escape with \\"
                ))
            return nil
        }
    }
}

/// Go's duration syntax as Kubernetes uses it: `300ms`, `1.5h`, `2h45m`.
func parseGoDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [
        ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
    ]
    var rest = Substring(text)
    var seconds = 0.0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let number = rest.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        guard let unit = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) }) else {
            return nil
        }
        rest = rest.dropFirst(unit.0.count)
        seconds += value * unit.1
    }
    return .milliseconds(Int64((seconds * 1000).rounded()))
}

func isDNSSubdomain(_ name: String) -> Bool {
    guard !name.isEmpty, name.count <= 253 else { return false }
    return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        !label.isEmpty && label.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
            && label.first != "-" && label.last != "-"
    }
}

func isCELIdentifier(_ name: String) -> Bool {
    guard let first = name.first, first.isASCII, first.isLetter || first == "_" else { return false }
    return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
}
