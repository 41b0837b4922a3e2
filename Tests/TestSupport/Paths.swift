import Foundation

/// Where tests find the checkout and put their scratch files.
public enum Paths {
    /// The package root: found from this source file's location, which is stable however the
    /// tests are started.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// Scratch space for this test run, under the package's `.build` (ignored by git).
    public static let scratchRoot: URL = {
        let url = packageRoot.appendingPathComponent(".build/test-scratch")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A new, empty scratch directory, e.g. for one test's `HOME`.
    public static func makeScratchDirectory(_ prefix: String) throws -> URL {
        let url = scratchRoot.appendingPathComponent("\(prefix)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The directory holding the package's built products (`portcullis` among them).
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }
}
