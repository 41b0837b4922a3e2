import Foundation
import Yams

/// Reads `AccessPolicy` documents from YAML (or JSON) text, files and directories.
///
/// Loading is all-or-nothing: any problem in any document fails the whole load with every
/// problem listed, so a caller that holds a good set keeps it (see ``PolicyStore``).
public enum PolicyLoader {
    /// File extensions read from directories.
    public static let fileExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Largest policy file read, so a mistaken path (a log, a binary) fails fast.
    public static let maximumFileBytes = 4 * 1024 * 1024

    /// Parses every document of one YAML stream (`---` separated; empty documents are skipped).
    public static func parse(_ text: String, file: String) throws(PolicyLoadErrors) -> [AccessPolicy] {
        try parse(text, file: file, lines: SourceLines())
    }

    /// `parse(_:file:)` with the line table its documents share (tests count its splits).
    static func parse(_ text: String, file: String, lines: SourceLines) throws(PolicyLoadErrors) -> [AccessPolicy] {
        if let problem = YAMLShapeCheck.problem(in: text, file: file) { throw PolicyLoadErrors([problem]) }
        var errors: [PolicyLoadError] = []
        var policies: [AccessPolicy] = []
        do {
            let parser = try Parser(yaml: text)
            while let root = try parser.nextRoot() {
                if case .scalar = root, root.null != nil { continue }  // an empty document
                let document = YAMLNodeReader(file: file, node: root, path: "", text: text, lines: lines)
                if let policy = AccessPolicy.decode(document, errors: &errors) { policies.append(policy) }
            }
        } catch let error as YamlError {
            errors.append(yamlSyntaxError(error, file: file))
        } catch {
            errors.append(PolicyLoadError(.yamlSyntax, at: SourceLocation(file: file, line: 1, column: 1), "\(error)"))
        }
        guard errors.isEmpty else { throw PolicyLoadErrors(errors) }
        return policies
    }

    /// Reads one `AccessPolicy` that arrived as an API object (admission review, watch event).
    /// Problems are reported by field path, e.g. `AccessPolicy p spec.rules[0].expression:1:9`.
    public static func parseObject(_ object: [String: Any], label: String) throws(PolicyLoadErrors) -> [AccessPolicy] {
        let location = SourceLocation(file: label, line: 0, column: 0)
        guard let data = try? JSONSerialization.data(withJSONObject: object),
            let text = String(data: data, encoding: .utf8)
        else { throw PolicyLoadErrors([PolicyLoadError(.wrongType, at: location, "the object is not JSON")]) }
        var errors: [PolicyLoadError] = []
        do {
            guard let root = try Yams.compose(yaml: text) else {
                throw PolicyLoadErrors([PolicyLoadError(.wrongType, at: location, "the object is empty")])
            }
            var document = YAMLNodeReader(file: label, node: root, path: "", text: text)
            document.objectLabel = label
            if let policy = AccessPolicy.decode(document, errors: &errors), errors.isEmpty { return [policy] }
        } catch let failure as PolicyLoadErrors {
            throw failure
        } catch {
            errors.append(PolicyLoadError(.yamlSyntax, at: location, "\(error)"))
        }
        throw PolicyLoadErrors(errors)
    }

    /// Loads files and directories (recursively, in name order); every policy name must be unique
    /// across all of them.
    public static func load(paths: [String]) throws(PolicyLoadErrors) -> [AccessPolicy] {
        var errors: [PolicyLoadError] = []
        var policies: [AccessPolicy] = []
        for file in files(in: paths, errors: &errors) {
            let text: String
            do {
                text = try read(file)
            } catch {
                errors.append(
                    PolicyLoadError(.unreadableFile, at: SourceLocation(file: file, line: 1, column: 1), "\(error)"))
                continue
            }
            do {
                policies += try parse(text, file: file)
            } catch {
                errors += error.errors
            }
        }
        errors += duplicateNames(policies)
        guard errors.isEmpty else { throw PolicyLoadErrors(errors) }
        return policies
    }

    static func duplicateNames(_ policies: [AccessPolicy]) -> [PolicyLoadError] {
        var first: [String: SourceLocation] = [:]
        var errors: [PolicyLoadError] = []
        for policy in policies {
            if let earlier = first[policy.name] {
                errors.append(
                    PolicyLoadError(
                        .duplicateName, at: policy.location, "duplicate AccessPolicy name \"\(policy.name)\"",
                        hint: "policy names are unique cluster-wide; the first is at \(earlier)"))
            } else {
                first[policy.name] = policy.location
            }
        }
        return errors
    }

    /// The policy files named by `paths`: files as given, directories searched recursively.
    static func files(in paths: [String], errors: inout [PolicyLoadError]) -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                errors.append(
                    PolicyLoadError(
                        .unreadableFile, at: SourceLocation(file: path, line: 1, column: 1), "no such file or directory"
                    ))
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let found = (manager.enumerator(atPath: path)?.compactMap { $0 as? String } ?? [])
                .filter { fileExtensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
                .sorted()
            files += found.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
        }
        return files
    }

    private static func read(_ file: String) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        if let size = attributes[.size] as? Int, size > maximumFileBytes {
            throw PolicyFileTooLarge(bytes: size)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        guard let text = String(data: data, encoding: .utf8) else { throw PolicyFileNotUTF8() }
        return text
    }

    private static func yamlSyntaxError(_ error: YamlError, file: String) -> PolicyLoadError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let contextText = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return PolicyLoadError(
                .yamlSyntax, at: SourceLocation(file: file, line: mark.line, column: mark.column),
                "YAML syntax: \(problem)\(contextText)",
                hint: "check indentation, quotes and the characters : [ ] { } #")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return PolicyLoadError(
                .yamlSyntax, at: SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                "duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) in a mapping",
                hint: "each key may appear once; merge the two entries")
        default:
            return PolicyLoadError(.yamlSyntax, at: SourceLocation(file: file, line: 1, column: 1), "\(error)")
        }
    }
}

struct PolicyFileTooLarge: Error, CustomStringConvertible {
    let bytes: Int
    var description: String { "file has \(bytes) bytes; policy files are limited to \(PolicyLoader.maximumFileBytes)" }
}

struct PolicyFileNotUTF8: Error, CustomStringConvertible {
    var description: String { "file is not UTF-8 text" }
}
