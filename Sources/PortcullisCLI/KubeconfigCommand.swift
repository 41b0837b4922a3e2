import ArgumentParser
import Foundation
import KubeProxy

struct KubeconfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig", abstract: "Print a kubeconfig that points a user at the proxy.",
        discussion: """
            With --oidc-issuer and --client-id, kubectl signs the user in through the kubectl \
            oidc-login plugin (int128/kubelogin), which caches and refreshes the ID token; the \
            file holds no secret of the user's. --token and --token-file are for service \
            accounts and automation.
            """)

    @Option(help: "The proxy's address, https://host[:port].") var server: String
    @Option(help: "The CA that signed the proxy's certificate (PEM); without it, the system's trust store.")
    var certificateAuthority: String?
    @Option(help: "Name of the cluster, user and context entries.") var name = "portcullis"
    @Option(help: "Default namespace of the context.") var namespace: String?
    @Option(help: "OIDC issuer URL.") var oidcIssuer: String?
    @Option(help: "OIDC client ID.") var clientID: String?
    @Option(help: "OIDC client secret, for clients that have one.") var clientSecret: String?
    @Option(help: "Extra OIDC scope to request (repeatable), e.g. groups.") var extraScope: [String] = []
    @Option(help: "A bearer token, written into the file.") var token: String?
    @Option(help: "A file kubectl reads the bearer token from (absolute path).") var tokenFile: String?
    @Option(help: "Write the kubeconfig to this file (mode 0600) instead of printing it.") var output: String?

    func validate() throws {
        let credentials = [oidcIssuer != nil || clientID != nil, token != nil, tokenFile != nil].filter { $0 }
        guard credentials.count == 1 else {
            throw ValidationError(
                "give exactly one credential: --oidc-issuer with --client-id, --token or --token-file")
        }
        if (oidcIssuer == nil) != (clientID == nil) {
            throw ValidationError("--oidc-issuer and --client-id go together")
        }
        if oidcIssuer == nil, clientSecret != nil || !extraScope.isEmpty {
            throw ValidationError("--client-secret and --extra-scope are OIDC settings")
        }
    }

    func run() throws {
        let credential: UserKubeconfig.Credential
        if let oidcIssuer, let clientID {
            credential = .oidc(
                issuer: oidcIssuer, clientID: clientID, clientSecret: clientSecret, extraScopes: extraScope)
        } else if let token {
            credential = .token(token)
        } else {
            credential = .tokenFile(tokenFile ?? "")
        }
        let text: String
        do {
            let authority = try certificateAuthority.map { try String(contentsOfFile: $0, encoding: .utf8) }
            text = try UserKubeconfig(
                server: server, certificateAuthorityPEM: authority, name: name, namespace: namespace,
                credential: credential
            ).yaml()
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        guard let output else {
            print(text, terminator: "")
            return
        }
        do {
            let created = FileManager.default.createFile(
                atPath: output, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
            guard created else { throw CocoaError(.fileWriteUnknown) }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: output)
        } catch {
            printError("error: cannot write \(output): \(error)")
            throw ExitCode(1)
        }
    }
}
