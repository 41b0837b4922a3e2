import Foundation
import KubeProxy
import Sandbox
import TestSupport
import Testing

/// `recordings.portForwardCaptures`: each forwarded connection's bytes, as they crossed the proxy,
/// in a pcap file that tcpdump (and Wireshark) reads.
extension ProxyIntegrationTests {
    /// The payload each way of a pcap written by the proxy (LINKTYPE_RAW, IPv4 + TCP without
    /// options): client-to-pod and pod-to-client, and the number of packets.
    static func capturedStreams(_ file: URL) throws -> (toPod: Data, toClient: Data, packets: Int) {
        let bytes = [UInt8](try Data(contentsOf: file))
        func le32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        guard bytes.count >= 24, le32(0) == 0xa1b2_c3d4, le32(20) == 101 else {
            throw TestSupportError("\(file.path) is not a LINKTYPE_RAW pcap")
        }
        var toPod = Data()
        var toClient = Data()
        var packets = 0
        var offset = 24
        while offset + 16 <= bytes.count {
            let length = le32(offset + 8)
            let packet = bytes[(offset + 16)..<(offset + 16 + length)]
            offset += 16 + length
            packets += 1
            let sourcePort = Int(packet[packet.startIndex + 20]) << 8 | Int(packet[packet.startIndex + 21])
            let payload = packet.dropFirst(40)
            if sourcePort == 49152 { toPod.append(contentsOf: payload) } else { toClient.append(contentsOf: payload) }
        }
        guard offset == bytes.count else { throw TestSupportError("\(file.path) ends inside a packet") }
        return (toPod, toClient, packets)
    }

    @Test(
        "port-forward captures: each connection's bytes both ways in a pcap that tcpdump reads, named in its audit line",
        .timeLimit(.minutes(2)), arguments: ["1.27", "1.33"])
    func portForwardCaptures(minor: String) async throws {
        let scratch = try Paths.makeScratchDirectory("capture")
        let recordings = scratch.appendingPathComponent("recordings")
        try FileManager.default.createDirectory(at: recordings, withIntermediateDirectories: true)
        let audit = scratch.appendingPathComponent("audit.jsonl")
        let (proxy, kubeconfig) = try await Self.proxy(
            recordings: .init(directory: recordings.path, failClosed: true, capturePortForwards: true), auditFile: audit
        )
        let body = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let server = try LoopbackServer(.http(body: body))
        let forward = try BackgroundProcess(
            executable: try Kubectl.named(minor).path,
            arguments: ["--kubeconfig", kubeconfig.path, "-n", "dev", "port-forward", "pod/web", ":\(server.port)"],
            environment: Kubectl.environment(home: scratch))
        defer { forward.stop() }
        let local = try #require(
            Int(try await forward.waitForMatch(#"Forwarding from 127\.0\.0\.1:(\d+) -> \#(server.port)\b"#)))
        let requests = ["GET /a HTTP/1.0\r\nHost: pod\r\n\r\n", "GET /b HTTP/1.0\r\nHost: pod\r\n\r\n"]
        var responses: [Data] = []
        for request in requests {
            responses.append(try await LoopbackClient.exchange(port: local, request: Data(request.utf8)))
        }
        forward.stop()
        try await Task.sleep(for: .milliseconds(500))
        try await proxy.shutdown(gracePeriod: .seconds(5))

        let lines = try String(contentsOf: audit, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.compactMap { $0["annotations"] as? [String: String] }.filter {
            $0["portcullis.dev/port"] == String(server.port)
        }
        #expect(lines.count == 2)
        let captured = try lines.map { annotations in
            let path = try #require(annotations["portcullis.dev/capture"], "\(annotations)")
            #expect(annotations["portcullis.dev/capture-error"] == nil)
            return URL(fileURLWithPath: path)
        }
        let streams = try captured.map(Self.capturedStreams)
        // Which file is which connection: by the request each holds.
        for (request, response) in zip(requests, responses) {
            let stream = try #require(streams.first { $0.toPod == Data(request.utf8) }, "no capture of \(request)")
            #expect(stream.toClient == response)
            #expect(response.suffix(body.count) == body)
        }
        for (file, stream) in zip(captured, streams) {
            let read = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/tcpdump"), arguments: ["-nn", "-r", file.path])
            #expect(read.succeeded, "\(read.standardError)")
            let listed = read.standardOutput.split(separator: "\n")
            #expect(listed.count == stream.packets, "\(read.standardOutput.prefix(2000))")
            #expect(listed.first?.contains("10.255.0.1.49152 > 10.255.0.2.\(server.port): Flags [S]") == true)
        }
    }
}
