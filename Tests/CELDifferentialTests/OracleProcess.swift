import Foundation

/// Runs `scripts/cel-oracle/oracle.py` once for a whole batch of cases, in a virtual
/// environment with `common-expression-language==0.10.0` (cel-rust), installing it when missing.
enum OracleProcess {
    static let package = "common-expression-language==0.10.0"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `${PORTCULLIS_CACHE:-/var/cache/portcullis}/cel-oracle-venv`.
    static var environmentDirectory: URL {
        let cache =
            ProcessInfo.processInfo.environment["PORTCULLIS_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "/var/cache/portcullis"
        return URL(fileURLWithPath: cache).appendingPathComponent("cel-oracle-venv")
    }

    /// The oracle script, found from this file's location in the repository.
    static func scriptURL(filePath: String = #filePath) throws -> URL {
        let candidates = [URL(fileURLWithPath: filePath), URL(fileURLWithPath: filePath).resolvingSymlinksInPath()]
        for file in candidates {
            let root = file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let script = root.appendingPathComponent("scripts/cel-oracle/oracle.py")
            if FileManager.default.fileExists(atPath: script.path) { return script }
        }
        throw Failure(description: "scripts/cel-oracle/oracle.py not found next to \(filePath)")
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: URL? = nil) throws -> (Int32, Data, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("cel-oracle-\(UUID()).err")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errors)
        if let input { process.standardInput = try FileHandle(forReadingFrom: input) }
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        return (process.terminationStatus, data, stderr)
    }

    /// The venv's python, after making sure the oracle package imports; throws when it cannot be installed.
    static func python() throws -> String {
        let directory = environmentDirectory
        let python = directory.appendingPathComponent("bin/python").path
        if FileManager.default.isExecutableFile(atPath: python),
            (try? run(python, ["-c", "import cel"]))?.0 == 0
        {
            return python
        }
        try FileManager.default.createDirectory(
            at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        let (venvStatus, _, venvErrors) = try run("/usr/bin/env", ["python3", "-m", "venv", directory.path])
        guard venvStatus == 0 else { throw Failure(description: "creating \(directory.path) failed: \(venvErrors)") }
        let (pipStatus, _, pipErrors) = try run(python, ["-m", "pip", "install", "--quiet", package])
        guard pipStatus == 0 else { throw Failure(description: "pip install \(package) failed: \(pipErrors)") }
        let (checkStatus, _, checkErrors) = try run(python, ["-c", "import cel"])
        guard checkStatus == 0 else { throw Failure(description: "the oracle does not import: \(checkErrors)") }
        return python
    }

    /// Evaluates every case in one oracle process; returns the decoded results by case id.
    static func evaluate(_ cases: [DifferentialCase]) throws -> [Int: [String: Any]] {
        let python = try python()
        let script = try scriptURL()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("cel-oracle-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: input) }
        var lines = Data()
        for item in cases {
            let object: [String: Any] = ["id": item.id, "expr": item.expression, "bindings": item.bindings]
            lines.append(try JSONSerialization.data(withJSONObject: object))
            lines.append(0x0A)
        }
        try lines.write(to: input)
        let (status, output, errors) = try run(python, [script.path], input: input)
        guard status == 0 else { throw Failure(description: "the oracle failed (\(status)): \(errors)") }
        var results: [Int: [String: Any]] = [:]
        for line in output.split(separator: 0x0A) where !line.isEmpty {
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let id = object["id"] as? Int
            else { throw Failure(description: "unreadable oracle output: \(String(decoding: line, as: UTF8.self))") }
            results[id] = object
        }
        guard results.count == cases.count else {
            throw Failure(description: "the oracle answered \(results.count) of \(cases.count) cases: \(errors)")
        }
        return results
    }
}
