import Foundation
import Sandbox
import TestSupport
import Testing

/// The official Python client's exec (`kubernetes.stream`, WebSocket, no
/// kubectl involved) through the proxy.
extension ProxyIntegrationTests {
    static let pythonExec = """
        import json, sys
        from kubernetes import client, config
        from kubernetes.stream import stream

        config.load_kube_config(config_file=sys.argv[1])
        api = client.CoreV1Api()
        session = stream(
            api.connect_get_namespaced_pod_exec, "web", "dev", container="app",
            command=["sh", "-c", sys.argv[2]],
            stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
        out, err = [], []
        while session.is_open():
            session.update(timeout=1)
            if session.peek_stdout():
                out.append(session.read_stdout())
            if session.peek_stderr():
                err.append(session.read_stderr())
        print(json.dumps({"stdout": "".join(out), "stderr": "".join(err), "code": session.returncode}))
        """

    @Test("the Python kubernetes client's exec works through the proxy, with its exit code, and is recorded")
    func pythonClientExec() async throws {
        let running = try await Fixture.shared.start()
        // The client is installed beside kubectl 1.37 by scripts/testenv (kubectl-matrix.sh --install).
        let python = try Kubectl.named("1.37").path.deletingLastPathComponent().appendingPathComponent("python")
        let directory = try Paths.makeScratchDirectory("python-client")
        let script = directory.appendingPathComponent("exec.py")
        try Self.pythonExec.write(to: script, atomically: true, encoding: .utf8)
        let id = UUID().uuidString.prefix(8).lowercased()
        let command = "echo py-\(id); seq 1 500; echo err-\(id) >&2; exit 3"
        let result = try await ProcessRunner.run(
            python, arguments: [script.path, try running.kubeconfig(.alice).path, command],
            environment: ["HOME": directory.path, "PATH": "/usr/bin:/bin"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let answer = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
            "\(result.standardOutput)\(result.standardError)")
        #expect(answer["stdout"] as? String == "py-\(id)\n" + (1...500).map { "\($0)\n" }.joined())
        #expect(answer["stderr"] as? String == "err-\(id)\n")
        #expect(answer["code"] as? Int == 3)

        let (end, _) = try await Self.sessionAudit(running, containing: "py-\(id)")
        #expect((end["user"] as? [String: Any])?["username"] as? String == "alice")
        let annotations = try #require(end["annotations"] as? [String: String])
        #expect(annotations["portcullis.dev/exit-code"] == "3")
        // Client 37 offers v5 first (stdin close); older ones v4.
        #expect(annotations["portcullis.dev/transport"]?.hasPrefix("websocket/v") == true)
        let path = try #require(annotations["portcullis.dev/recording"])
        let recorded = try Asciicast(contentsOf: path).events.filter { $0.code == "o" }.map(\.data).joined()
        #expect(recorded.contains("py-\(id)\n"))
        #expect(recorded.contains("\n498\n499\n500\n"))
        #expect(recorded.contains("err-\(id)\n"))
    }
}
