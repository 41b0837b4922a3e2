import NIOCore
import Testing

@testable import SPDY

@Suite("Remote command vocabulary")
struct RemoteCommandVocabularyTests {
    @Test("query flags parse as the apiserver parses them; a terminal drops stderr")
    func options() {
        let parsed = RemoteCommandOptions(queryItems: [
            ("command", "sh"), ("stdin", ""), ("stdout", "FALSE"), ("stderr", "1"), ("stderr", "false"), ("tty", "0"),
        ])
        #expect(parsed == RemoteCommandOptions(stdin: true, stdout: false, stderr: true, tty: false))
        let tty = RemoteCommandOptions(queryItems: [
            ("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "x"),
        ])
        #expect(tty == RemoteCommandOptions(stdin: true, stdout: true, stderr: false, tty: true))
        #expect(tty.streamTypes(for: .v4) == [.error, .stdin, .stdout, .resize])
        #expect(tty.streamTypes(for: .v2) == [.error, .stdin, .stdout])
        #expect(tty.canonicalQueryItems.map(\.name) == ["stdin", "stdout", "tty"])
        #expect(!RemoteCommandOptions(stdin: false, stdout: false, stderr: false).isValid)
    }

    @Test("the v4 status for exit code 3 is byte-identical to the §9.1 vector")
    func statusJSON() throws {
        var decoder = SPDYFrameDecoder()
        let hex = TestVectors.execSession[13].1
        guard case .data(let frame) = try decoder.decodeAll(ByteBuffer(hex: hex)).first else {
            Issue.record("expected DATA")
            return
        }
        #expect(RemoteCommandStatus.exited(3).json == String(buffer: frame.data))
        #expect(RemoteCommandStatus.success.json == #"{"metadata":{},"status":"Success"}"#)
        #expect(try RemoteCommandStatus.decode(errorStream: frame.data, protocolVersion: .v4) == .exited(3))
    }

    @Test("status decoding follows client-go: empty is success, other failures keep their message")
    func statusDecoding() throws {
        #expect(try RemoteCommandStatus.decode(errorStream: ByteBuffer(), protocolVersion: .v5) == .success)
        let internalError = ByteBuffer(
            string:
                #"{"metadata":{},"status":"Failure","message":"Internal error occurred: a \u003cb\u003e","reason":"InternalError","details":{"causes":[{"message":"x"}]},"code":500}"#
        )
        #expect(
            try RemoteCommandStatus.decode(errorStream: internalError, protocolVersion: .v4)
                == .failure(message: "Internal error occurred: a <b>", reason: "InternalError", code: 500))
        #expect(
            try RemoteCommandStatus.decode(errorStream: ByteBuffer(string: "command terminated"), protocolVersion: .v2)
                == .failure(message: "command terminated", reason: nil, code: nil))
        let noCode = ByteBuffer(string: #"{"status":"Failure","reason":"NonZeroExitCode","message":"m"}"#)
        #expect(throws: KubernetesStreamError.self) {
            try RemoteCommandStatus.decode(errorStream: noCode, protocolVersion: .v4)
        }
        #expect(throws: KubernetesStreamError.self) {
            try RemoteCommandStatus.decode(errorStream: ByteBuffer(string: "not json"), protocolVersion: .v4)
        }
    }

    @Test("failures escape like Go: quotes, newlines, <, > and &")
    func escaping() {
        let status = RemoteCommandStatus.failure(message: "a\"b\n<&>", reason: "InternalError", code: 500)
        #expect(
            status.json
                == #"{"metadata":{},"status":"Failure","message":"a\"b\n\u003c\u0026\u003e","reason":"InternalError","code":500}"#
        )
        #expect(status.errorStreamPayload(for: .v3) == ByteBuffer(string: "a\"b\n<&>"))
        #expect(RemoteCommandStatus.success.errorStreamPayload(for: .v2).readableBytes == 0)
    }

    @Test("resize messages decode however they are split or batched, keys in any case")
    func resizeDecoding() throws {
        var decoder = TerminalSizeDecoder()
        #expect(try decoder.append(ByteBuffer(string: "{\"Width\":80,")) == [])
        #expect(
            try decoder.append(ByteBuffer(string: "\"Height\":24}\n{\"width\":1")) == [
                TerminalSize(width: 80, height: 24)
            ])
        #expect(decoder.hasPartialObject)
        #expect(
            try decoder.append(ByteBuffer(string: "32,\"HEIGHT\":43,\"x\":\"}\"}\n{\"Width\":0,\"Height\":0}\n"))
                == [TerminalSize(width: 132, height: 43), TerminalSize(width: 0, height: 0)])
        #expect(!decoder.hasPartialObject)
        #expect(TerminalSize(width: 80, height: 24).json == "{\"Width\":80,\"Height\":24}\n")
        var bad = TerminalSizeDecoder()
        #expect(throws: KubernetesStreamError.self) { try bad.append(ByteBuffer(string: "[1]")) }
        var overflow = TerminalSizeDecoder()
        #expect(throws: KubernetesStreamError.self) { try overflow.append(ByteBuffer(string: "{\"Width\":70000}")) }
        var endless = TerminalSizeDecoder()
        #expect(throws: KubernetesStreamError.self) {
            try endless.append(ByteBuffer(string: "{\"a\":\"" + String(repeating: "x", count: 5000)))
        }
    }
}

@Suite("Remote command over SPDY, both ends from this module")
struct RemoteCommandLoopbackTests {
    static let versions = RemoteCommandSPDYServer.protocolVersions

    @Test("exec without a terminal: stdin through, stdout and stderr apart, exit code 3")
    func execNoTTY() async throws {
        let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
        guard case .upgraded(let clientSession, let version) = try await server.connect(protocolVersions: Self.versions)
        else {
            Issue.record("not upgraded")
            return
        }
        #expect(version == "v5.channel.k8s.io")
        let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: true)
        let (serverSession, chosen) = try await server.sessions.next()
        async let accepted = RemoteCommandSPDYServer.accept(
            session: serverSession, protocolVersion: chosen, options: options)
        let client = try await RemoteCommandSPDYClient.start(
            session: clientSession, protocolVersion: version, options: options)
        let command = try await accepted

        // The "command": echoes stdin to stdout upper-cased, reports on stderr, exits 3.
        let runner = Task {
            var input = ByteBuffer()
            for try await var chunk in command.stdin! { input.writeBuffer(&chunk) }
            try await command.writeStdout(ByteBuffer(string: String(buffer: input).uppercased()))
            try await command.writeStderr(ByteBuffer(string: "warning\n"))
            await command.finish(status: .exited(3))
        }
        try await client.writeStdin(ByteBuffer(string: "hello "))
        try await client.writeStdin(ByteBuffer(string: "world\n"))
        try await client.closeStdin()
        async let stdout = client.stdout!.collect(upTo: 1000)
        async let stderr = client.stderr!.collect(upTo: 1000)
        #expect(String(buffer: try await stdout) == "HELLO WORLD\n")
        #expect(String(buffer: try await stderr) == "warning\n")
        #expect(try await client.status() == .exited(3))
        try await runner.value
        try await clientSession.closeFuture.get()
        try await server.shutdown()
    }

    @Test("exec with a terminal over v3 to v5 carries resizes; v1/v2 have no resize stream")
    func tty() async throws {
        for version in ["v5.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"] {
            let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
            let clientSession = try #require(try await server.connect(protocolVersions: [version]).session)
            let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: true, tty: true)
            let (serverSession, chosen) = try await server.sessions.next()
            #expect(chosen == version)
            async let accepted = RemoteCommandSPDYServer.accept(
                session: serverSession, protocolVersion: chosen, options: options)
            let client = try await RemoteCommandSPDYClient.start(
                session: clientSession, protocolVersion: chosen, options: options)
            let command = try await accepted
            #expect(client.stderr == nil)
            try await client.resize(to: TerminalSize(width: 80, height: 24))
            try await client.resize(to: TerminalSize(width: 132, height: 43))
            try await client.closeStdin()
            let sizes = Task {
                var sizes: [TerminalSize] = []
                for try await size in command.resizes {
                    sizes.append(size)
                    if sizes.count == 2 { break }
                }
                return sizes
            }
            if command.protocolVersion.supportsResize {
                #expect(
                    try await sizes.value == [
                        TerminalSize(width: 80, height: 24), TerminalSize(width: 132, height: 43),
                    ])
            } else {
                #expect(try await sizes.value == [])
            }
            for try await _ in command.stdin! {}
            try await command.writeStdout(ByteBuffer(string: "$ "))
            await command.finish(status: .success)
            #expect(String(buffer: try await client.stdout!.collect(upTo: 100)) == "$ ")
            #expect(try await client.status() == .success)
            try await server.shutdown()
        }
    }

    @Test("a duplicated stdin stream fails the session with a BadRequest status on the error stream")
    func duplicateStream() async throws {
        let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
        let clientSession = try #require(try await server.connect(protocolVersions: ["v4.channel.k8s.io"]).session)
        let options = RemoteCommandOptions(stdin: true, stdout: true, stderr: false, tty: true)
        let (serverSession, chosen) = try await server.sessions.next()
        let accepted = Task {
            try await RemoteCommandSPDYServer.accept(session: serverSession, protocolVersion: chosen, options: options)
        }
        let error = try await clientSession.openStream(headers: ["streamtype": "error"])
        _ = try await clientSession.openStream(headers: ["streamtype": "stdin"])
        // A client sending stdin twice instead of resize (the Teleport regression of 2026).
        await #expect(throws: SPDYError.self) {
            _ = try await clientSession.openStream(headers: ["streamtype": "stdin"])
        }
        let thrown = await #expect(throws: KubernetesStreamError.self) { _ = try await accepted.value }
        #expect(thrown?.kind == .duplicateStream)
        let statusBytes = try await error.inbound.endingAtReset().collect(upTo: 1000)
        guard
            case .failure(_, let reason, let code) = try RemoteCommandStatus.decode(
                errorStream: statusBytes, protocolVersion: .v4)
        else {
            Issue.record("expected a failure status")
            return
        }
        #expect(reason == "BadRequest")
        #expect(code == 400)
        try await clientSession.closeFuture.get()
        try await server.shutdown()
    }

    @Test("unknown, unrequested and multi-valued stream types are refused")
    func invalidTypes() async throws {
        for headers: SPDYHeaders in [
            ["streamtype": "stdtty"], ["streamtype": "stderr"], ["streamtype": "stdin\u{0}stdin"], ["x": "y"],
        ] {
            let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
            let clientSession = try #require(try await server.connect(protocolVersions: ["v4.channel.k8s.io"]).session)
            let (serverSession, chosen) = try await server.sessions.next()
            let accepted = Task {
                try await RemoteCommandSPDYServer.accept(
                    session: serverSession, protocolVersion: chosen,
                    options: RemoteCommandOptions(stdin: true, stderr: false))
            }
            await #expect(throws: SPDYError.self) { _ = try await clientSession.openStream(headers: headers) }
            await #expect(throws: KubernetesStreamError.self) { _ = try await accepted.value }
            try await server.shutdown()
        }
    }

    @Test("an incomplete stream set times out with a Timeout status")
    func creationTimeout() async throws {
        let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
        let clientSession = try #require(try await server.connect(protocolVersions: ["v4.channel.k8s.io"]).session)
        let (serverSession, chosen) = try await server.sessions.next()
        let accepted = Task {
            try await RemoteCommandSPDYServer.accept(
                session: serverSession, protocolVersion: chosen, options: RemoteCommandOptions(),
                streamCreationTimeout: .milliseconds(300))
        }
        let error = try await clientSession.openStream(headers: ["streamtype": "error"])
        let thrown = await #expect(throws: KubernetesStreamError.self) { _ = try await accepted.value }
        #expect(thrown?.kind == .streamCreationTimeout)
        let status = try RemoteCommandStatus.decode(
            errorStream: try await error.inbound.endingAtReset().collect(upTo: 1000), protocolVersion: .v4)
        #expect(
            status == .failure(message: "timed out waiting for client to create streams", reason: "Timeout", code: 504))
        try await server.shutdown()
    }

    @Test("a v4 error stream that ends by a reset with no status is an error for the client, not a silent success")
    func lostStatus() async throws {
        let server = try await LoopbackSPDYServer(protocolVersions: Self.versions)
        let clientSession = try #require(try await server.connect(protocolVersions: ["v4.channel.k8s.io"]).session)
        let options = RemoteCommandOptions(stdout: true, stderr: false)
        let (serverSession, chosen) = try await server.sessions.next()
        async let accepted = RemoteCommandSPDYServer.accept(
            session: serverSession, protocolVersion: chosen, options: options)
        let client = try await RemoteCommandSPDYClient.start(
            session: clientSession, protocolVersion: chosen, options: options)
        _ = try await accepted
        await serverSession.close()
        let error = await #expect(throws: KubernetesStreamError.self) { _ = try await client.status() }
        #expect(error?.kind == .connectionClosed)
        try await server.shutdown()
    }
}
