import NIOCore

/// Where the line guard's decisions go: the command's stdin, the user's screen, the recording.
protocol LineGuardIO: Sendable {
    /// Passes bytes on to the command's stdin.
    func forward(_ bytes: [UInt8]) async throws
    /// Ends the command's stdin.
    func closeInput() async throws
    /// Writes text to the user (the terminal, or stderr without one).
    func notify(_ text: String) async
    func marker(_ label: String) async
}

/// Holds each command line typed into an exec session until a ``LineJudge`` has decided on it.
///
/// With a terminal, keystrokes go on as typed (the remote shell echoes and edits them) and only
/// the Enter that submits a line is held:
///
/// ```
///  typing ──Enter──▶ held ──allowed / approved──▶ Enter forwarded ──▶ typing
///                      │
///                      └──blocked──▶ message to the user, Ctrl-C forwarded instead (the shell
///                                    drops the line; in a bracketed paste the paste is ended
///                                    first and the rest of it dropped) ──▶ typing
/// ```
/// Without a terminal, stdin is a stream of lines and each line is held whole; a blocked line
/// is never forwarded and ends the command's stdin (later lines may depend on it), and the rest of
/// the client's input is read and dropped.
struct StdinLineGuard: Sendable {
    /// After a blocked line has been cleared with Ctrl-C, input that came in the same read waits
    /// this long, so that the shell has handled the interrupt before it reads on.
    static let settleDelay: Duration = .milliseconds(100)
    static let interrupt: UInt8 = 0x03
    static let pasteEnd: [UInt8] = Array("\u{1B}[201~".utf8)

    struct Counts: Sendable, Equatable {
        var checked = 0
        var blocked = 0
        var approved = 0
    }

    let judge: any LineJudge
    let terminal: Bool
    /// With a terminal: lets a Ctrl-C typed while a line waits for approval end the wait (the
    /// bridge reads stdin ahead to see it).
    let interrupt: LineWaitInterrupt?
    private var reconstructor: CommandLineReconstructor
    /// Without a terminal: the bytes of the line being read.
    private var held: [UInt8] = []
    /// A blocked line ended a bracketed paste early: the rest of the paste is dropped.
    private var discardingPaste = false
    private(set) var inputClosed = false
    private(set) var counts = Counts()

    init(terminal: Bool, judge: any LineJudge) {
        self.judge = judge
        self.terminal = terminal
        interrupt = terminal ? LineWaitInterrupt() : nil
        reconstructor = CommandLineReconstructor(mode: terminal ? .terminal : .lines)
    }

    mutating func process(_ chunk: ByteBuffer, io: some LineGuardIO) async throws {
        if terminal {
            try await processKeystrokes(chunk.readableBytesView, io: io)
        } else {
            try await processLines(chunk.readableBytesView, io: io)
        }
    }

    /// The client's stdin ended: a last line without a newline is judged, then the command's
    /// stdin is closed.
    mutating func finish(io: some LineGuardIO) async throws {
        guard !inputClosed else { return }
        if !terminal, !held.isEmpty {
            let line = CommandLineReconstructor.Line(
                reconstructor.currentText, uncertainty: reconstructor.pendingUncertainty)
            let verdict = await decide(line, io: io)
            if verdict.outcome == .blocked {
                held = []
            } else {
                try await io.forward(held)
            }
        }
        inputClosed = true
        try await io.closeInput()
    }

    private mutating func processKeystrokes(_ bytes: ByteBufferView, io: some LineGuardIO) async throws {
        var pending: [UInt8] = []
        pending.reserveCapacity(bytes.count)
        var cleared = false
        for byte in bytes {
            if discardingPaste {
                _ = reconstructor.consume(byte)  // lines the rest of the paste submits are dropped with it
                if !reconstructor.isPasting { discardingPaste = false }
                continue
            }
            guard let line = reconstructor.consume(byte) else {
                pending.append(byte)
                continue
            }
            if cleared, !pending.isEmpty { try await Task.sleep(for: Self.settleDelay) }
            try await io.forward(pending)
            pending = []
            let verdict = await decide(line, io: io)
            guard verdict.outcome == .blocked else {
                pending.append(byte)
                continue
            }
            var clear: [UInt8] = []
            if reconstructor.isPasting {
                clear += Self.pasteEnd
                discardingPaste = true
            }
            clear.append(Self.interrupt)
            try await io.forward(clear)
            cleared = true
        }
        if cleared, !pending.isEmpty { try await Task.sleep(for: Self.settleDelay) }
        try await io.forward(pending)
    }

    private mutating func processLines(_ bytes: ByteBufferView, io: some LineGuardIO) async throws {
        guard !inputClosed else { return }
        for byte in bytes {
            held.append(byte)
            guard let line = reconstructor.consume(byte) else { continue }
            let verdict = await decide(line, io: io)
            if verdict.outcome == .blocked {
                held = []
                inputClosed = true
                try await io.closeInput()
                return
            }
            try await io.forward(held)
            held = []
        }
    }

    /// Judges one line, tells the user what they need to know, and counts and records it.
    private mutating func decide(_ line: CommandLineReconstructor.Line, io: some LineGuardIO) async -> LineVerdict {
        let terminal = self.terminal
        let judge = self.judge
        let verdict: LineVerdict
        if let interrupt {
            let wait = Task {
                await judge.judge(line) { text in await io.notify(Self.format(text, terminal: terminal)) }
            }
            interrupt.arm(wait)
            verdict = await withTaskCancellationHandler {
                await wait.value
            } onCancel: {
                wait.cancel()
            }
            _ = interrupt.disarm()
        } else {
            verdict = await judge.judge(line) { text in await io.notify(Self.format(text, terminal: terminal)) }
        }
        if verdict.outcome != .unchecked { counts.checked += 1 }
        switch verdict.outcome {
        case .blocked: counts.blocked += 1
        case .approved: counts.approved += 1
        case .allowed, .unchecked: break
        }
        if let notice = verdict.notice { await io.notify(Self.format(notice, terminal: terminal)) }
        if let marker = verdict.marker { await io.marker(marker) }
        return verdict
    }

    /// A notice on a line of its own: a terminal in raw mode needs CR LF, and the cursor may be
    /// in the middle of the shell's line.
    static func format(_ text: String, terminal: Bool) -> String {
        terminal ? "\r\n[portcullis] \(text)\r\n" : "[portcullis] \(text)\n"
    }
}
