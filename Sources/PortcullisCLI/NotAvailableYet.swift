import ArgumentParser

/// Subcommands whose feature has not landed yet. They say so and exit with code 2, rather than
/// pretend to work.
protocol NotAvailableYet: ParsableCommand {
    /// The issue that delivers the feature, for the message.
    static var deliveredBy: String { get }
}

extension NotAvailableYet {
    func run() throws {
        let name = Self.configuration.commandName ?? "this command"
        print("portcullis \(name): not available yet (\(Self.deliveredBy))")
        throw ExitCode(2)
    }
}

struct ForwardCommand: NotAvailableYet {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Relay a pod-local port to an external host (databases, SSH).")
    static let deliveredBy = "Database and SSH targets"
}
