import ArgumentParser
import Foundation
import Policy

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Check, try and test AccessPolicy files.",
        subcommands: [Lint.self, Eval.self, Test.self])

    struct Lint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate policy files: YAML, schema and every CEL expression, with file:line:column errors.")

        @Argument(help: "Policy files or directories (read recursively: *.yaml, *.yml, *.json).")
        var paths: [String]

        func run() throws {
            let (count, errors) = PolicyLinter.lint(paths: paths)
            guard errors.isEmpty else {
                for error in errors { printError(error.description) }
                printError("\(errors.count) problem\(errors.count == 1 ? "" : "s") found")
                throw ExitCode(1)
            }
            print("\(count) polic\(count == 1 ? "y" : "ies") OK")
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate one CEL expression with JSON bindings and print the result as JSON.",
            discussion: """
                The bindings file is a JSON object whose keys become variables, e.g. \
                {"request": {"namespace": "prod"}}. Policy variables (request, object, exec, ...) \
                keep their types; other keys are dynamic.
                """)

        @Argument(help: "The CEL expression.")
        var expression: String

        @Option(help: "A JSON file of variable bindings.")
        var bindings: String?

        func run() throws {
            var values: [String: CELValue] = [:]
            if let bindings {
                let data: Data
                do {
                    data = try Data(contentsOf: URL(fileURLWithPath: bindings))
                } catch {
                    printError("error: cannot read \(bindings): \(error.localizedDescription)")
                    throw ExitCode(1)
                }
                guard case .map(let map) = try? CELValue(json: data) else {
                    printError("error: \(bindings) must hold a JSON object of variable bindings")
                    throw ExitCode(1)
                }
                for (key, value) in map {
                    if case .string(let name) = key { values[name] = value }
                }
            }
            var environment = CELEnvironment.portcullisPolicy
            for name in values.keys where environment.variables[name] == nil {
                environment = environment.declaring(name, as: .dyn)
            }
            do {
                let program = try environment.compile(expression)
                let (value, cost) = try program.evaluateWithCost(CELActivation(values))
                let json = try JSONSerialization.data(
                    withJSONObject: try value.jsonObject(),
                    options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: json, as: UTF8.self))
                printError("type: \(value.celType), cost: \(cost)")
            } catch let error as CELError {
                let position = error.location.map { "1:\($0.column): " } ?? ""
                printError("error: \(position)\(error.message)")
                if let location = error.location, location.line == 1 {
                    printError("  \(expression)\n  \(String(repeating: " ", count: max(0, location.column - 1)))^")
                }
                throw ExitCode(1)
            } catch {
                printError("error: the result cannot be shown as JSON: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Run policy test cases (\(PolicyTestSuite.fileName) files) and print a table; exit 1 on any mismatch.")

        @Argument(help: "Directories searched for \(PolicyTestSuite.fileName), or test files.")
        var paths: [String]

        func run() throws {
            let files = paths.flatMap(PolicyTestSuite.discover)
            guard !files.isEmpty else {
                printError("error: no \(PolicyTestSuite.fileName) found in \(paths.joined(separator: ", "))")
                throw ExitCode(1)
            }
            var rows: [[String]] = []
            var failures = 0
            for file in files {
                do {
                    for result in try PolicyTestSuite.load(file).run() {
                        let got =
                            result.decision.outcome.rawValue
                            + (result.decision.decidedBy.map { " (\($0))" } ?? "")
                        rows.append([
                            result.passed ? "PASS" : "FAIL", result.suite, result.testCase.name,
                            result.testCase.expectation.outcome.rawValue, got,
                        ])
                        if !result.passed {
                            failures += 1
                            rows.append(["", "", "  " + result.mismatches.joined(separator: "; "), "", ""])
                        }
                    }
                } catch {
                    failures += 1
                    printError(error.description)
                }
            }
            print(table([["RESULT", "SUITE", "CASE", "EXPECTED", "GOT"]] + rows))
            let passed = rows.filter { $0[0] == "PASS" }.count
            print("\n\(passed) passed, \(failures) failed")
            if failures > 0 { throw ExitCode(1) }
        }

        private func table(_ rows: [[String]]) -> String {
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
            return rows.map { row in
                zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces)
            }.joined(separator: "\n")
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
