import Foundation
import Sandbox
import TestSupport
import Testing

/// The Python `kubernetes` client (37.x): exec over WebSocket v5 with text frames that carry the channel
/// byte, and the legacy WebSocket port-forward with its 2-byte port prefixes (protocols.md §4, §5.2).
@Suite("Python kubernetes client over WebSocket", .timeLimit(.minutes(5)))
struct PythonClientInteropTests {
    static let script = #"""
        import sys
        from kubernetes import client
        from kubernetes.stream import stream, portforward
        cfg = client.Configuration()
        cfg.host = sys.argv[1]
        api = client.CoreV1Api(client.ApiClient(cfg))
        out = stream(api.connect_get_namespaced_pod_exec, "x", "ns", command=["sh", "-c", "echo from-exec"],
                     stderr=True, stdin=False, stdout=True, tty=False)
        print("EXEC", repr(out))
        ws = stream(api.connect_get_namespaced_pod_exec, "x", "ns", command=["sh", "-c", "read line; echo got $line; exit 7"],
                    stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
        ws.write_stdin("typed\n")
        ws.run_forever(timeout=10)
        print("STDOUT", repr(ws.read_stdout()), "CODE", ws.returncode)
        port = int(sys.argv[2])
        pf = portforward(api.connect_get_namespaced_pod_portforward, "x", "ns", ports=str(port))
        s = pf.socket(port)
        s.setblocking(True)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print("PF", len(data), data.endswith(b"hello from the pod\n"))
        s.close()
        """#

    @Test("exec with an exit code and port-forward through the legacy channels")
    func pythonClient() async throws {
        let kubectl = try Kubectl.named("1.37")
        let python = kubectl.path.deletingLastPathComponent().appendingPathComponent("python3")
        let harness = try await Harness.start(webSocket: true)
        defer { Task { try await harness.stop() } }
        let target = try LoopbackServer(.http(body: Data("hello from the pod\n".utf8)))
        let scriptFile = harness.home.appendingPathComponent("client.py")
        try Self.script.write(to: scriptFile, atomically: true, encoding: .utf8)
        let result = try await ProcessRunner.run(
            python, arguments: [scriptFile.path, "http://127.0.0.1:\(harness.server.port)", String(target.port)],
            environment: harness.environment)
        let log = "\(result.standardOutput)\n\(result.standardError)\n\(harness.server.log.text)"
        #expect(result.exitCode == 0, "\(log)")
        #expect(result.standardOutput.contains("EXEC 'from-exec\\n'"), "\(log)")
        #expect(result.standardOutput.contains("STDOUT 'got typed\\n' CODE 7"), "\(log)")
        #expect(result.standardOutput.contains("PF ") && result.standardOutput.contains(" True"), "\(log)")
        #expect(harness.server.log.text.contains("/portforward?ports=\(target.port) -> v4.channel.k8s.io"), "\(log)")
    }
}
