import Testing

@testable import KubeProxy

/// Keystrokes in, submitted lines out.
@Suite("CommandLineReconstructor")
struct CommandLineReconstructorTests {
    typealias Line = CommandLineReconstructor.Line

    static func lines(_ input: String, mode: CommandLineReconstructor.Mode = .terminal) -> [Line] {
        var reconstructor = CommandLineReconstructor(mode: mode)
        return reconstructor.consume(Array(input.utf8))
    }

    static func lines(bytes: [UInt8], mode: CommandLineReconstructor.Mode = .terminal) -> [Line] {
        var reconstructor = CommandLineReconstructor(mode: mode)
        return reconstructor.consume(bytes)
    }

    @Test("printable input is submitted at CR or LF, and a line in progress is not")
    func submitAtEnter() {
        #expect(Self.lines("ls -l\r") == [Line("ls -l")])
        #expect(Self.lines("ls -l\n") == [Line("ls -l")])
        #expect(Self.lines("ls -l").isEmpty)
        #expect(Self.lines("\r") == [Line("")])
    }

    @Test("CR LF submits a line and then an empty one")
    func crlf() {
        #expect(Self.lines("ls\r\n") == [Line("ls"), Line("")])
    }

    @Test("several lines in one chunk are each submitted, in order")
    func severalLinesInOneChunk() {
        #expect(Self.lines("echo a\recho b\rrm -rf /x\r") == [Line("echo a"), Line("echo b"), Line("rm -rf /x")])
    }

    @Test("a line split over chunks, even inside a UTF-8 character, is one line")
    func splitAcrossChunks() {
        var reconstructor = CommandLineReconstructor(mode: .terminal)
        let bytes = Array("echo grüße\r".utf8)
        var submitted: [Line] = []
        for byte in bytes { submitted += reconstructor.consume([byte]) }
        #expect(submitted == [Line("echo grüße")])
    }

    @Test("UTF-8 of every length is decoded, and invalid bytes become U+FFFD")
    func utf8() {
        #expect(Self.lines("é 中 😀\r") == [Line("é 中 😀")])
        #expect(Self.lines(bytes: [0x61, 0xFF, 0x62, 0x0D]) == [Line("a\u{FFFD}b")])
        // A lead byte followed by ASCII: the sequence is cut short.
        #expect(Self.lines(bytes: [0xC3, 0x61, 0x0D]) == [Line("\u{FFFD}a")])
        // A lead byte right before Enter.
        #expect(Self.lines(bytes: [0x61, 0xE4, 0x0D]) == [Line("a\u{FFFD}")])
        // An overlong encoding of "/".
        #expect(Self.lines(bytes: [0xE0, 0x80, 0xAF, 0x0D]) == [Line("\u{FFFD}")])
    }

    @Test("backspace and DEL erase the character before the cursor, a whole UTF-8 character")
    func backspace() {
        #expect(Self.lines("lss\u{7F}\r") == [Line("ls")])
        #expect(Self.lines("lss\u{08}\r") == [Line("ls")])
        #expect(Self.lines("é\u{7F}e\r") == [Line("e")])
        #expect(Self.lines("\u{7F}\u{7F}ls\r") == [Line("ls")])
        #expect(Self.lines("rm -rf /x\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}\u{7F}echo\r") == [Line("echo")])
    }

    @Test("Ctrl-U kills the line before the cursor")
    func killLine() {
        #expect(Self.lines("rm -rf /\u{15}ls\r") == [Line("ls")])
        // With the cursor moved back, what is after it stays.
        #expect(Self.lines("rm -rf /tmp\u{1B}[D\u{1B}[D\u{1B}[D\u{15}\r") == [Line("tmp")])
    }

    @Test("Ctrl-K kills from the cursor to the end")
    func killToEnd() {
        #expect(Self.lines("ls /etc\u{01}\u{06}\u{06}\u{0B}\r") == [Line("ls")])
    }

    @Test("Ctrl-W kills the word before the cursor; where a canonical-mode terminal would kill less, uncertain")
    func killWord() {
        #expect(Self.lines("echo hello world\u{17}there\r") == [Line("echo hello there")])
        // Linux's line discipline would erase only "x" here, and "rf" below.
        #expect(Self.lines("rm -rf /tmp/x\u{17}/safe\r") == [Line("rm -rf /safe", uncertainty: .editing)])
        #expect(Self.lines("rm -rf   \u{17}ls\r") == [Line("rm ls", uncertainty: .editing)])
        #expect(Self.lines("rm -rf\u{17}\u{17}\u{17}ls\r") == [Line("ls", uncertainty: .editing)])
        #expect(Self.lines("\u{17}ls\r") == [Line("ls")])
    }

    @Test("Ctrl-C abandons the line; nothing is submitted for it")
    func abandon() {
        #expect(Self.lines("rm -rf /\u{03}").isEmpty)
        #expect(Self.lines("rm -rf /\u{03}ls\r") == [Line("ls")])
        // It also clears an uncertainty: the next line starts fresh.
        #expect(Self.lines("\u{1B}[A\u{03}ls\r") == [Line("ls")])
    }

    @Test("Ctrl-A, Ctrl-E, Home, End and the arrows move the cursor; input is inserted there")
    func cursorMoves() {
        #expect(Self.lines("-rf /x\u{01}rm \r") == [Line("rm -rf /x")])
        #expect(Self.lines("rm /x\u{1B}[D\u{1B}[D-rf \u{05} /y\r") == [Line("rm -rf /x /y")])
        #expect(Self.lines("s\u{1B}[Dl\u{1B}[C -l\r") == [Line("ls -l")])
        #expect(Self.lines("bc\u{1B}OHa\u{1B}OFd\r") == [Line("abcd")])
        #expect(Self.lines("bc\u{1B}[Ha\u{1B}[Fd\r") == [Line("abcd")])
        #expect(Self.lines("bc\u{1B}[1~a\u{1B}[4~d\r") == [Line("abcd")])
        #expect(Self.lines("bc\u{1B}[7~a\u{1B}[8~d\r") == [Line("abcd")])
        #expect(Self.lines("ac\u{02}b\u{06}d\r") == [Line("abcd")])
        #expect(Self.lines("ac\u{1B}ODb\u{1B}OCd\r") == [Line("abcd")])
        #expect(Self.lines("ac\u{1B}[1Db\r") == [Line("abc")])
    }

    @Test("the cursor stays inside the line")
    func cursorBounds() {
        var reconstructor = CommandLineReconstructor(mode: .terminal)
        _ = reconstructor.consume(Array("ab\u{1B}[D\u{1B}[D\u{1B}[D\u{1B}[D".utf8))
        #expect(reconstructor.cursorPosition == 0)
        _ = reconstructor.consume(Array("\u{1B}[C\u{1B}[C\u{1B}[C\u{1B}[C".utf8))
        #expect(reconstructor.cursorPosition == 2)
        #expect(reconstructor.currentText == "ab")
    }

    @Test("Delete and Ctrl-D remove the character under the cursor")
    func deleteForward() {
        #expect(Self.lines("lsx\u{1B}[D\u{1B}[3~\r") == [Line("ls")])
        // Ctrl-D on a line also hands it to the shell in a canonical-mode terminal: uncertain.
        #expect(Self.lines("lsx\u{02}\u{04}\r") == [Line("ls", uncertainty: .editing)])
        #expect(Self.lines("ls\u{04}\r") == [Line("ls", uncertainty: .editing)])
        #expect(Self.lines("\u{04}ls\r") == [Line("ls")], "on an empty line it changes nothing")
    }

    @Test("up and down recall history the proxy cannot see: the line is uncertain")
    func historyRecall() {
        #expect(Self.lines("\u{1B}[A\r") == [Line("", uncertainty: .history)])
        #expect(Self.lines("\u{1B}OB\r") == [Line("", uncertainty: .history)])
        #expect(Self.lines("ls\u{1B}[A\r") == [Line("ls", uncertainty: .history)])
        for key in ["\u{10}", "\u{0E}", "\u{12}", "\u{13}", "\u{1B}[5~", "\u{1B}[6~"] {
            #expect(Self.lines("x\(key)\r") == [Line("x", uncertainty: .history)], "\(key.debugDescription)")
        }
        // Only that line: the next one is certain again.
        #expect(Self.lines("\u{1B}[A\rls\r") == [Line("", uncertainty: .history), Line("ls")])
    }

    @Test("Tab and Shift-Tab complete from what the proxy cannot see")
    func completion() {
        #expect(Self.lines("cat /etc/pass\t\r") == [Line("cat /etc/pass", uncertainty: .completion)])
        #expect(Self.lines("ls\u{1B}[Z\r") == [Line("ls", uncertainty: .completion)])
    }

    @Test("shell-dependent keys make the line uncertain; the first reason is kept")
    func editingKeys() {
        for key in [
            "\u{19}", "\u{14}", "\u{16}", "\u{18}", "\u{1F}", "\u{1D}", "\u{00}", "\u{1C}", "\u{1B}b", "\u{1B}.",
        ] {
            #expect(Self.lines("ls\(key)\r") == [Line("ls", uncertainty: .editing)], "\(key.debugDescription)")
        }
        #expect(Self.lines("ls\t\u{1B}[A\r") == [Line("ls", uncertainty: .completion)])
        #expect(Self.lines("ls\u{1B}[1;5D\r") == [Line("ls", uncertainty: .editing)], "Ctrl-Left moves by words")
        #expect(Self.lines("ls\u{1B}[2~\r") == [Line("ls", uncertainty: .editing)], "Insert toggles overwrite")
        #expect(Self.lines("ls\u{1B}OM\r") == [Line("ls", uncertainty: .editing), Line("")], "keypad Enter submits")
    }

    @Test("Ctrl-O submits the line, and the next one is recalled from history")
    func operateAndGetNext() {
        #expect(Self.lines("ls\u{0F}\r") == [Line("ls"), Line("", uncertainty: .history)])
    }

    @Test("escape sequences that do not edit are consumed, never inserted")
    func escapeSequencesConsumed() {
        // F5, a cursor position report, device attributes, focus in, an SGR mouse click, F1.
        let noise = "\u{1B}[15~\u{1B}[12;40R\u{1B}[?1;2c\u{1B}[I\u{1B}[<0;10;5M\u{1B}OP"
        #expect(Self.lines("l\(noise)s\r") == [Line("ls")])
        #expect(Self.lines("ls\u{0C}\u{07}\r") == [Line("ls")], "Ctrl-L and Ctrl-G leave the line alone")
    }

    @Test("an escape sequence may be split across chunks")
    func splitEscapeSequence() {
        var reconstructor = CommandLineReconstructor(mode: .terminal)
        var submitted = reconstructor.consume(Array("ab\u{1B}".utf8))
        submitted += reconstructor.consume(Array("[".utf8))
        submitted += reconstructor.consume(Array("Dx\r".utf8))
        #expect(submitted == [Line("axb")])
    }

    @Test("Enter or Ctrl-C inside an unfinished escape sequence still acts: an Enter is never swallowed")
    func controlsEndSequences() {
        for start in ["\u{1B}", "\u{1B}[", "\u{1B}[12", "\u{1B}O"] {
            #expect(
                Self.lines("rm -rf /x\(start)\r") == [Line("rm -rf /x", uncertainty: .editing)],
                "\(start.debugDescription)")
            #expect(Self.lines("rm -rf /x\(start)\n") == [Line("rm -rf /x", uncertainty: .editing)])
            #expect(Self.lines("rm -rf /x\(start)\u{03}ls\r") == [Line("ls")])
        }
    }

    @Test("an endless or malformed escape sequence is abandoned and makes the line uncertain")
    func malformedSequence() {
        let long = "\u{1B}[" + String(repeating: "1", count: CommandLineReconstructor.maximumSequenceLength + 1)
        #expect(Self.lines("ls\(long)x\r") == [Line("lsx", uncertainty: .editing)])
        let exactly = "\u{1B}[" + String(repeating: "1", count: CommandLineReconstructor.maximumSequenceLength) + "~"
        #expect(Self.lines("ls\(exactly)\r") == [Line("ls")])
        #expect(Self.lines("ls\u{1B}[\u{01}\r") == [Line("ls", uncertainty: .editing)])
    }

    @Test("bracketed paste is inserted literally, and each newline in it submits a line")
    func bracketedPaste() {
        let paste = "\u{1B}[200~echo a\necho b\rrm -rf /x\u{1B}[201~"
        #expect(Self.lines(paste) == [Line("echo a"), Line("echo b")])
        #expect(Self.lines(paste + "\r") == [Line("echo a"), Line("echo b"), Line("rm -rf /x")])
        // Inside a paste, Tab, Ctrl-C and arrows are text, not keys.
        #expect(Self.lines("\u{1B}[200~a\tb\u{03}c\u{1B}[A\u{1B}[201~\r") == [Line("a\tb\u{03}c\u{1B}[A")])
        // Text around a paste.
        #expect(Self.lines("echo \u{1B}[200~x\u{1B}[201~ y\r") == [Line("echo x y")])
    }

    @Test("the paste state spans chunks, and a near-miss of the paste end is text")
    func pasteAcrossChunks() {
        var reconstructor = CommandLineReconstructor(mode: .terminal)
        var submitted = reconstructor.consume(Array("\u{1B}[200~ls\n".utf8))
        #expect(reconstructor.isPasting)
        submitted += reconstructor.consume(Array("a\u{1B}[20".utf8))
        submitted += reconstructor.consume(Array("1~".utf8))
        #expect(!reconstructor.isPasting)
        #expect(submitted == [Line("ls")])
        #expect(reconstructor.currentText == "a")
        #expect(Self.lines("\u{1B}[200~a\u{1B}[202~b\u{1B}[201~\r") == [Line("a\u{1B}[202~b")])
        #expect(Self.lines("\u{1B}[200~a\u{1B}\u{1B}[201~\r") == [Line("a\u{1B}")])
    }

    @Test("a line of exactly the limit is certain; one more character makes it uncertain")
    func lengthLimitTerminal() {
        let limit = CommandLineReconstructor.maximumLineLength
        let exact = String(repeating: "a", count: limit)
        #expect(Self.lines(exact + "\r") == [Line(exact)])
        #expect(Self.lines(exact + "b\r") == [Line(exact, uncertainty: .tooLong)])
        // Erasing back under the limit does not make it certain again: what was dropped is unknown.
        #expect(Self.lines(exact + "b\u{7F}\u{7F}\r") == [Line(String(exact.dropLast(2)), uncertainty: .tooLong)])
        // Multi-byte characters count once.
        let wide = String(repeating: "é", count: limit)
        #expect(Self.lines(wide + "\r") == [Line(wide)])
    }

    @Test("without a terminal every byte is text and only LF submits")
    func dataMode() {
        #expect(Self.lines("ls\r\n\u{1B}[A\t\u{7F}x\n", mode: .lines) == [Line("ls\r"), Line("\u{1B}[A\t\u{7F}x")])
        #expect(Self.lines("a\u{03}b\u{15}c\n", mode: .lines) == [Line("a\u{03}b\u{15}c")])
        #expect(Self.lines("no newline", mode: .lines).isEmpty)
    }

    @Test("without a terminal a long line is reported in pieces of the limit, all uncertain")
    func lengthLimitData() {
        let limit = CommandLineReconstructor.maximumLineLength
        let exact = String(repeating: "a", count: limit)
        #expect(Self.lines(exact + "\n", mode: .lines) == [Line(exact)])
        let lines = Self.lines(exact + "rm -rf /\n", mode: .lines)
        #expect(lines == [Line(exact, uncertainty: .tooLong), Line("rm -rf /", uncertainty: .tooLong)])
        #expect(Self.lines(exact + "b\nls\n", mode: .lines).last == Line("ls"))
        // A multi-byte character that crosses the limit starts the next piece.
        let crossing = Self.lines(exact + "é\n", mode: .lines)
        #expect(crossing == [Line(exact, uncertainty: .tooLong), Line("é", uncertainty: .tooLong)])
    }
}
