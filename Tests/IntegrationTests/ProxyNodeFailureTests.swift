import Foundation
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The node under a session dies: the kubelet (here a node agent of the test's own, behind a Node
/// and a pod of its own, so the shared cluster's agent is left alone) is killed mid-exec. The
/// apiserver drops the stream, and the proxy must turn that into a failure kubectl reports, never
/// a silent exit 0, and close the recording with what arrived up to then.
extension ProxyIntegrationTests {
    /// A node agent process serving one Node of its own, with one pod (`app` container) bound to
    /// it in `dev`; `stop()` removes both objects and the process.
    struct PrivateNode {
        let name: String
        let pod: String
        let agent: BackgroundProcess

        static func start() async throws -> PrivateNode {
            let cluster = try await TestCluster.shared()
            let binary = try #require(
                cluster.nodeAgentBinary, "cluster.env has no NODE_AGENT_BIN: restart the test cluster")
            let port = try SandboxSettings.freePorts().proxyPort
            let root = try Paths.makeScratchDirectory("node-agent")
            let pki = cluster.pkiDirectory.path
            let agent = try BackgroundProcess(
                executable: binary,
                arguments: [
                    "--listen", "127.0.0.1:\(port)", "--tls-cert", "\(pki)/node-agent.crt", "--tls-key",
                    "\(pki)/node-agent.key", "--client-ca", cluster.caFile.path, "--root", root.path,
                ], environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"])
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let health = try await ProcessRunner.run(
                    URL(fileURLWithPath: "/usr/bin/curl"),
                    arguments: ["-sf", "--cacert", cluster.caFile.path, "https://127.0.0.1:\(port)/healthz"])
                if health.succeeded { break }
                guard ContinuousClock.now < deadline, agent.isRunning else {
                    throw TestSupportError("the private node agent did not come up: \(agent.transcript)")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            let id = UUID().uuidString.prefix(6).lowercased()
            let node = PrivateNode(name: "node-fault-\(id)", pod: "fault-\(id)", agent: agent)
            let created = try await ProxyIntegrationTests.admin(
                ["apply", "-f", "-"],
                input: """
                    apiVersion: v1
                    kind: Node
                    metadata: {name: \(node.name), labels: {kubernetes.io/hostname: \(node.name)}}
                    status:
                      addresses: [{type: InternalIP, address: 127.0.0.1}]
                      daemonEndpoints: {kubeletEndpoint: {Port: \(port)}}
                      conditions: [{type: Ready, status: "True", reason: KubeletReady, message: "a test's own node agent"}]
                    ---
                    apiVersion: v1
                    kind: Pod
                    metadata: {name: \(node.pod), namespace: dev}
                    spec:
                      nodeName: \(node.name)
                      containers: [{name: app, image: portcullis/local}]
                    """)
            guard created.succeeded else {
                throw TestSupportError("creating the node failed: \(created.standardError)")
            }
            let running = try await ProxyIntegrationTests.admin([
                "-n", "dev", "patch", "pod", node.pod, "--subresource=status", "--type=merge", "-p",
                #"{"status":{"phase":"Running","hostIP":"127.0.0.1","podIP":"127.0.0.1","containerStatuses":[{"name":"app","ready":true,"restartCount":0,"image":"portcullis/local","imageID":"","started":true,"state":{"running":{}}}]}}"#,
            ])
            guard running.succeeded else {
                throw TestSupportError("marking the pod running failed: \(running.standardError)")
            }
            return node
        }

        func stop() async throws {
            agent.stop()
            _ = try await ProxyIntegrationTests.admin(["-n", "dev", "delete", "pod", pod, "--wait=false"])
            _ = try await ProxyIntegrationTests.admin(["delete", "node", name, "--wait=false"])
        }
    }

    @Test(
        "the node agent killed mid-exec: kubectl exits non-zero with a message, the recording is valid up to that point",
        .timeLimit(.minutes(3)), arguments: ["1.27", "1.33"])
    func nodeAgentKilledMidExec(minor: String) async throws {
        let running = try await Fixture.shared.start()
        let node = try await PrivateNode.start()
        let marker = "node-fault-\(minor)-\(UUID().uuidString.prefix(6))"
        // Ticks until stopped; once the agent is gone its writes fail, so nothing lingers.
        let script = "echo \(marker) started; i=0; while [ $i -lt 240 ]; do sleep 0.25; i=$((i+1)); echo tick $i; done"
        let exec = try BackgroundProcess(
            executable: try Kubectl.named(minor).path,
            arguments: [
                "--kubeconfig", try running.kubeconfig(.alice).path, "-n", "dev", "exec", node.pod, "-c", "app", "--",
                "sh", "-c", script,
            ],
            environment: Kubectl.environment(home: try Paths.makeScratchDirectory("home")))
        defer { exec.stop() }
        _ = try await exec.waitForMatch("(tick 2)")

        node.agent.signal(SIGKILL)
        let status = try await exec.waitForExit(timeout: .seconds(60))
        try await node.stop()
        #expect(status != 0, "\(exec.transcript)")
        #expect(exec.transcript.contains("ended before the command's status arrived"), "\(exec.transcript)")

        let (end, _) = try await Self.sessionAudit(running, containing: marker)
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(
            annotations["portcullis.dev/session-error"]?.contains("ended before the command's status arrived") == true)
        let path = try #require(annotations["portcullis.dev/recording"])
        let cast = try Asciicast(contentsOf: path)
        let output = cast.events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(output.hasPrefix("\(marker) started\ntick 1\ntick 2\n"), "\(output)")
        #expect(exec.transcript.contains(output), "the client saw what the recording holds")
        let last = try #require(cast.events.last)
        #expect(last.code == "m")
        #expect(last.data.hasPrefix("error: the connection to the Kubernetes API server ended"), "\(last.data)")
        #expect(try await Asciinema.cat(path) == output)
    }
}
