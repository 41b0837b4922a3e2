import Foundation
import Policy

/// Runs the cel-spec conformance files (`tests/simple/testdata/*.textproto`) against the Swift
/// CEL implementation, scoring tests the way cel-go's conformance runner does: parse, check
/// unless `disable_check`, evaluate; `eval_error` only requires some evaluation error; no
/// matcher means the result must be `true`.
struct ConformanceRunner {
    enum Outcome {
        case passed
        case failed(String)
        case skipped(SkipReason)
    }

    enum SkipReason: String, CaseIterable {
        case protobuf = "needs protobuf messages"
        case checkOnly = "check_only (type deduction without evaluation)"
        case functionDeclarations = "declares custom functions"
        case optimizerMacros = "cel.block optimizer internals"
        case referenceRunnerSkips = "skipped by the reference runner (cel-go)"
    }

    struct FileResult {
        let file: String
        var passed = 0
        var failed: [(String, String)] = []
        var skipped: [SkipReason: Int] = [:]
        var skippedCount: Int { skipped.values.reduce(0, +) }
    }

    /// Tests cel-go's own conformance runner skips (see the data README, section 3).
    static let referenceSkips: Set<String> = [
        "timestamps/duration_converters/get_milliseconds",
        "optionals/optionals/map_optional_select_has",
        "string_ext/value_errors/indexof_out_of_range",
        "string_ext/value_errors/lastindexof_out_of_range",
        "fields/qualified_identifier_resolution/map_key_float",
        "fields/qualified_identifier_resolution/map_key_null",
        "fields/qualified_identifier_resolution/map_value_repeat_key",
        "fields/qualified_identifier_resolution/map_value_repeat_key_heterogeneous",
    ]

    /// The data folder: `CEL_CONFORMANCE_DIR`, else `<package root>/../shared/conformance/cel/testdata`,
    /// else `/work/shared/conformance/cel/testdata`.
    static func dataDirectory(filePath: String = #filePath) -> URL? {
        let fileManager = FileManager.default
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["CEL_CONFORMANCE_DIR"], !override.isEmpty {
            candidates.append(URL(fileURLWithPath: override))
        }
        let packageRoot = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent("../shared/conformance/cel/testdata").standardized)
        candidates.append(URL(fileURLWithPath: "/work/shared/conformance/cel/testdata"))
        return candidates.first { fileManager.fileExists(atPath: $0.path) }
    }

    func run(file url: URL) throws -> FileResult {
        let text = try String(contentsOf: url, encoding: .utf8)
        let root = try TextProtoReader.parse(text)
        let fileName = root.string("name") ?? url.deletingPathExtension().lastPathComponent
        var result = FileResult(file: url.lastPathComponent)
        for section in root.all("section").compactMap(\.message) {
            let sectionName = section.string("name") ?? ""
            for test in section.all("test").compactMap(\.message) {
                let name = "\(fileName)/\(sectionName)/\(test.string("name") ?? "")"
                switch runTest(test, file: fileName, fullName: name) {
                case .passed: result.passed += 1
                case .failed(let reason): result.failed.append((name, reason))
                case .skipped(let reason): result.skipped[reason, default: 0] += 1
                }
            }
        }
        return result
    }

    private static let protobufMarkers = [
        "TestAllTypes", "NestedEnum", "GlobalEnum", "NestedMessage", "proto2", "proto3", "NestedTestAllTypes",
    ]

    private func skipReason(_ test: TextProtoMessage, file: String, fullName: String) -> SkipReason? {
        if Self.referenceSkips.contains(fullName) { return .referenceRunnerSkips }
        if file == "block_ext" { return .optimizerMacros }
        let expr = test.string("expr") ?? ""
        if Self.protobufMarkers.contains(where: expr.contains) { return .protobuf }
        if expr.replacingOccurrences(of: "google.protobuf.Timestamp", with: "")
            .replacingOccurrences(of: "google.protobuf.Duration", with: "").contains("google.protobuf")
        {
            return .protobuf
        }
        if test.string("container")?.contains("conformance") == true { return .protobuf }
        for field in ["bindings", "value", "typed_result"] {
            for value in test.all(field)
            where value.containsField(named: "object_value") || value.containsField(named: "enum_value") {
                return .protobuf
            }
        }
        for decl in test.all("type_env").compactMap(\.message) {
            if decl.has("function") { return .functionDeclarations }
            if let type = decl.message("ident")?.message("type"), ConformanceValues.type(type) == nil {
                return .protobuf
            }
        }
        if test.bool("check_only"), test.message("typed_result")?.message("deduced_type") == nil { return .checkOnly }
        return nil
    }

    func runTest(_ test: TextProtoMessage, file: String, fullName: String) -> Outcome {
        if let reason = skipReason(test, file: file, fullName: fullName) { return .skipped(reason) }
        let expr = test.string("expr") ?? ""
        var variables: [String: CELType] = [:]
        for decl in test.all("type_env").compactMap(\.message) {
            if let name = decl.string("name"),
                let type = decl.message("ident")?.message("type").flatMap(ConformanceValues.type)
            {
                variables[name] = type
            }
        }
        var bindings: [String: CELValue] = [:]
        for binding in test.all("bindings").compactMap(\.message) {
            guard let name = binding.string("key"), let value = binding.message("value")?.message("value") else {
                continue
            }
            guard let converted = ConformanceValues.value(value) else { return .failed("unsupported binding \(name)") }
            bindings[name] = converted
            if variables[name] == nil { variables[name] = .dyn }
        }
        let environment = CELEnvironment(
            variables: variables, enableChecker: !test.bool("disable_check"), container: test.string("container"))
        let program: CELProgram
        do {
            program = try environment.compile(expr)
        } catch {
            // Message construction (`google.protobuf.Value{}`) is the protobuf feature set.
            if error.kind == .unsupported { return .skipped(.protobuf) }
            return .failed("compile error: \(error)")
        }
        if test.bool("check_only") {
            let deduced = test.message("typed_result")?.message("deduced_type").flatMap(ConformanceValues.type)
            return program.resultType == deduced
                ? .passed : .failed("deduced type \(program.resultType), expected \(String(describing: deduced))")
        }
        let result: Result<CELValue, CELError>
        do {
            result = .success(try program.evaluate(CELActivation(bindings)))
        } catch {
            result = .failure(error)
        }
        if test.has("eval_error") {
            if case .success(let value) = result { return .failed("expected an error, got \(value)") }
            return .passed
        }
        var expected: CELValue = .bool(true)
        if let value = test.message("value") {
            guard let converted = ConformanceValues.value(value) else { return .failed("unsupported expected value") }
            expected = converted
        } else if let typed = test.message("typed_result") {
            if let value = typed.message("result"), let converted = ConformanceValues.value(value) {
                expected = converted
            }
            if let deduced = typed.message("deduced_type").flatMap(ConformanceValues.type),
                program.resultType != deduced
            {
                return .failed("deduced type \(program.resultType), expected \(deduced)")
            }
        }
        switch result {
        case .failure(let error): return .failed("error: \(error)")
        case .success(let value):
            return ConformanceValues.equal(value, expected) ? .passed : .failed("got \(value), expected \(expected)")
        }
    }
}

/// Conversions from the conformance `Value` and `Type` messages.
enum ConformanceValues {
    static func value(_ message: TextProtoMessage) -> CELValue? {
        guard let (name, field) = message.fields.first.map({ ($0.name, $0.value) }) else { return nil }
        switch name {
        case "null_value": return .null
        case "bool_value": return .bool(field.token == "true")
        case "int64_value": return field.token.flatMap { Int64($0) }.map(CELValue.int)
        case "uint64_value": return field.token.flatMap { UInt64($0) }.map(CELValue.uint)
        case "double_value": return field.token.flatMap(double).map(CELValue.double)
        case "string_value": return field.text.map(CELValue.string)
        case "bytes_value": return field.bytes.map(CELValue.bytes)
        case "type_value": return field.text.map { CELValue.type(typeNamed($0)) }
        case "list_value":
            var elements: [CELValue] = []
            for element in field.message?.all("values").compactMap(\.message) ?? [] {
                guard let converted = value(element) else { return nil }
                elements.append(converted)
            }
            return .list(elements)
        case "map_value":
            var entries: [(CELValue, CELValue)] = []
            for entry in field.message?.all("entries").compactMap(\.message) ?? [] {
                guard let key = entry.message("key").flatMap(value), let item = entry.message("value").flatMap(value)
                else { return nil }
                entries.append((key, item))
            }
            return .map(CELMap(uniqueKeysWithLastValues: entries))
        default:
            return nil
        }
    }

    static func double(_ token: String) -> Double? {
        switch token.lowercased() {
        case "inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan": return .nan
        default: return Double(token)
        }
    }

    static func typeNamed(_ name: String) -> CELType {
        switch name {
        case "int": return .int
        case "uint": return .uint
        case "double": return .double
        case "bool": return .bool
        case "string": return .string
        case "bytes": return .bytes
        case "list": return .dynList
        case "map": return .dynMap
        case "null_type": return .null
        case "type": return .type(.dyn)
        case "google.protobuf.Timestamp": return .timestamp
        case "google.protobuf.Duration": return .duration
        case "optional_type": return .optional(.dyn)
        default: return .opaque(name)
        }
    }

    /// A conformance `Type` message as a CELType; nil for protobuf message and wrapper types.
    static func type(_ message: TextProtoMessage) -> CELType? {
        guard let (name, field) = message.fields.first.map({ ($0.name, $0.value) }) else { return nil }
        switch name {
        case "dyn": return .dyn
        case "null": return .null
        case "primitive":
            switch field.token {
            case "BOOL": return .bool
            case "INT64": return .int
            case "UINT64": return .uint
            case "DOUBLE": return .double
            case "STRING": return .string
            case "BYTES": return .bytes
            default: return nil
            }
        case "well_known":
            switch field.token {
            case "TIMESTAMP": return .timestamp
            case "DURATION": return .duration
            default: return nil
            }
        case "message_type":
            switch field.text {
            case "google.protobuf.Timestamp": return .timestamp
            case "google.protobuf.Duration": return .duration
            default: return nil
            }
        case "list_type":
            return field.message?.message("elem_type").flatMap(type).map(CELType.list)
        case "map_type":
            guard let key = field.message?.message("key_type").flatMap(type),
                let value = field.message?.message("value_type").flatMap(type)
            else { return nil }
            return .map(key: key, value: value)
        case "type":
            return field.message.flatMap(type).map(CELType.type) ?? .type(.dyn)
        case "type_param":
            return field.text.map(CELType.typeParameter)
        case "abstract_type":
            guard field.message?.string("name") == "optional_type",
                let parameter = field.message?.message("parameter_types").flatMap(type)
            else { return nil }
            return .optional(parameter)
        default:
            return nil
        }
    }

    /// Deep equality for results: map entries in any order, NaN equal to NaN, int and uint distinct.
    static func equal(_ actual: CELValue, _ expected: CELValue) -> Bool {
        switch (actual, expected) {
        case (.type(let a), .type(let b)): return a.name == b.name
        case (.list(let a), .list(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in b {
                guard let other = a[key], a.keys.contains(key), equal(other, value) else { return false }
            }
            return true
        default:
            return actual == expected
        }
    }
}
