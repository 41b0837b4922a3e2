import ArgumentParser

@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "A runtime access gateway for Kubernetes: policy-checked, recorded kubectl access.",
        subcommands: [
            SandboxCommand.self,
            ProxyCommand.self,
            WebhookCommand.self,
            ForwardCommand.self,
            PolicyCommand.self,
            ApproveCommand.self,
            DenyCommand.self,
            ReplayCommand.self,
            SessionsCommand.self,
            CertsCommand.self,
            KubeconfigCommand.self,
        ]
    )
}
