/// Rebuilds the command line a person is typing from the bytes of an exec session's stdin, so that
/// each line can be checked when it is submitted and before the shell runs it.
///
/// Two modes:
/// - ``Mode/terminal`` (`tty=true`): keystrokes as a terminal sends them, edited the way readline
///   (bash), libedit and busybox ash edit a line: printable input (UTF-8) is inserted at the
///   cursor; backspace and DEL erase before it, Ctrl-D and Delete under it; Ctrl-U kills to the
///   start, Ctrl-K to the end, Ctrl-W the word before the cursor; Ctrl-A/Home, Ctrl-E/End,
///   Ctrl-B/Left and Ctrl-F/Right move the cursor; Ctrl-C abandons the line; CR, LF, Ctrl-O and
///   keypad Enter submit it. Escape sequences (CSI, SS3) are consumed, never inserted; a control
///   character ends an unfinished one and acts on its own, so an Enter is always seen. Bracketed paste
///   (`ESC[200~` … `ESC[201~`) is inserted literally, and each newline inside it submits a line.
/// - ``Mode/lines`` (`tty=false`): stdin is data; every byte is literal and LF submits.
///
/// What the proxy cannot see makes a line *uncertain* instead of wrong: history recall (Up, Down,
/// Ctrl-P/N/R/S, Page Up/Down), completion (Tab), keys whose effect depends on shell state (yank,
/// transpose, undo, Meta/Alt keys, vi mode), edits a canonical-mode terminal (dash, no line
/// editor) would apply differently (Ctrl-D on a line, a Ctrl-W across punctuation) and lines
/// longer than ``maximumLineLength``. The text
/// of an uncertain line is the proxy's best guess; callers must not trust it (see
/// ``Line/uncertainty``). A line stays uncertain until it is submitted or abandoned.
///
/// ```
///          ┌──────── byte ≥ 0x20, UTF-8 ───────▶ insert at cursor
///  text ───┼──────── ESC ──▶ escape ──[──▶ csi(params) ──final──▶ edit / move / paste / ignore
///          │                    ├──O──▶ ss3 ──final──▶ move / ignore
///          │                    └──other──▶ Meta key: uncertain
///          ├──────── CR, LF, Ctrl-O ──▶ submitted(line), then a fresh line
///          └──────── other controls ──▶ edit, abandon, or uncertain
///  paste ──ESC[201~──▶ text       (inside: every byte literal, CR/LF submit)
/// ```
struct CommandLineReconstructor: Sendable, Equatable {
    /// Longest line kept, in Unicode scalars. Longer input is dropped and makes the line uncertain
    /// (in ``Mode/lines`` the line is reported in pieces of this length, each uncertain), so that
    /// a session cannot make the proxy hold unbounded input.
    static let maximumLineLength = 4096
    /// Longest escape sequence parameter text; longer sequences are abandoned (and the line made
    /// uncertain), since no key a person types produces one.
    static let maximumSequenceLength = 32

    enum Mode: Sendable, Equatable {
        case terminal
        case lines
    }

    /// Why the proxy cannot know what the shell will run for a line.
    enum Uncertainty: String, Sendable, Equatable {
        /// Up/Down, Page Up/Down, Ctrl-P/N/R/S, or Ctrl-O's next line: the shell's history.
        case history
        /// Tab: the shell completes from state the proxy does not see.
        case completion
        /// A key whose effect depends on the shell (yank, transpose, undo, Meta keys, vi mode,
        /// quoted insert, an unknown control or escape sequence).
        case editing
        /// The line is longer than ``CommandLineReconstructor/maximumLineLength``.
        case tooLong
    }

    /// One submitted line.
    struct Line: Sendable, Equatable {
        var text: String
        /// Set when the text is only a guess; the first reason seen.
        var uncertainty: Uncertainty?

        init(_ text: String, uncertainty: Uncertainty? = nil) {
            self.text = text
            self.uncertainty = uncertainty
        }
    }

    private enum State: Sendable, Equatable {
        case text
        /// After ESC.
        case escape
        /// After `ESC [`: parameter and intermediate bytes so far.
        case csi([UInt8])
        /// After `ESC O`.
        case ss3
    }

    let mode: Mode
    private var state = State.text
    private var scalars: [Unicode.Scalar] = []
    private var cursor = 0
    private var uncertainty: Uncertainty?
    /// Inside a bracketed paste (terminal mode).
    private(set) var isPasting = false
    /// In a paste, how many bytes of `ESC[201~` have been seen so far.
    private var pasteEndMatched = 0
    /// A UTF-8 sequence being decoded.
    private var pendingUTF8: [UInt8] = []
    private var pendingUTF8Length = 0

    private static let pasteEnd: [UInt8] = Array("\u{1B}[201~".utf8)

    init(mode: Mode) {
        self.mode = mode
    }

    /// The line as typed so far (for tests and diagnostics).
    var currentText: String { String(String.UnicodeScalarView(scalars)) }
    var cursorPosition: Int { cursor }
    /// Why the line typed so far is uncertain, if it is.
    var pendingUncertainty: Uncertainty? { uncertainty }

    /// Consumes every byte of `bytes`; returns the lines submitted, in order.
    mutating func consume(_ bytes: some Sequence<UInt8>) -> [Line] {
        var lines: [Line] = []
        for byte in bytes {
            if let line = consume(byte) { lines.append(line) }
        }
        return lines
    }

    /// Consumes one byte; returns the line it submitted, if it did.
    mutating func consume(_ byte: UInt8) -> Line? {
        if mode == .lines { return consumeData(byte) }
        if isPasting { return consumePasted(byte) }
        if state != .text, byte < 0x20 {
            // A control character ends an unfinished sequence and acts on its own, as terminals
            // and line editors treat it (ESC then Enter runs the line in vi mode): an Enter is
            // never swallowed by a sequence, so it is always held.
            state = .text
            markUncertain(.editing)
        }
        switch state {
        case .text:
            return consumeText(byte)
        case .escape:
            state = .text
            switch byte {
            case UInt8(ascii: "["): state = .csi([])
            case UInt8(ascii: "O"): state = .ss3
            default: markUncertain(.editing)  // Meta/Alt key, or vi command mode
            }
            return nil
        case .csi(var parameters):
            if (0x20...0x3F).contains(byte) {
                parameters.append(byte)
                if parameters.count > Self.maximumSequenceLength {
                    state = .text
                    markUncertain(.editing)
                } else {
                    state = .csi(parameters)
                }
                return nil
            }
            state = .text
            if (0x40...0x7E).contains(byte) {
                controlSequence(parameters: String(decoding: parameters, as: UTF8.self), final: byte)
            } else {
                markUncertain(.editing)  // not a valid sequence: what the shell makes of it is unknown
            }
            return nil
        case .ss3:
            state = .text
            switch byte {
            case UInt8(ascii: "A"), UInt8(ascii: "B"): markUncertain(.history)
            case UInt8(ascii: "C"): moveRight()
            case UInt8(ascii: "D"): moveLeft()
            case UInt8(ascii: "H"): cursor = 0
            case UInt8(ascii: "F"): cursor = scalars.count
            case UInt8(ascii: "P")...UInt8(ascii: "S"): break  // F1-F4
            case UInt8(ascii: "M"):  // keypad Enter in application mode: it may run the line
                markUncertain(.editing)
                return submit()
            default: markUncertain(.editing)  // other keypad keys in application mode
            }
            return nil
        }
    }

    // MARK: Modes

    private mutating func consumeData(_ byte: UInt8) -> Line? {
        if byte == 0x0A { return submit() }
        insertByte(byte)
        guard scalars.count > Self.maximumLineLength, let overflow = scalars.popLast() else { return nil }
        // Report what is held so far, so the caller decides on it before holding more; the rest
        // is the middle of a line, and uncertain too.
        let line = Line(currentText, uncertainty: uncertainty ?? .tooLong)
        reset()
        uncertainty = .tooLong
        insert(overflow)
        return line
    }

    private mutating func consumePasted(_ byte: UInt8) -> Line? {
        if byte == Self.pasteEnd[pasteEndMatched] {
            pasteEndMatched += 1
            if pasteEndMatched == Self.pasteEnd.count {
                pasteEndMatched = 0
                isPasting = false
            }
            return nil
        }
        if pasteEndMatched > 0 {
            // Not the end after all: what looked like it was pasted text.
            let partial = Self.pasteEnd.prefix(pasteEndMatched)
            pasteEndMatched = 0
            for earlier in partial { insertByte(earlier) }
            return consumePasted(byte)
        }
        if byte == 0x0D || byte == 0x0A { return submit() }
        insertByte(byte)
        return nil
    }

    private mutating func consumeText(_ byte: UInt8) -> Line? {
        if byte >= 0x20 && byte != 0x7F {
            insertByte(byte)
            return nil
        }
        if !pendingUTF8.isEmpty { flushInvalidUTF8() }
        switch byte {
        case 0x0D, 0x0A:  // Enter, Ctrl-J
            return submit()
        case 0x0F:  // Ctrl-O: bash's operate-and-get-next runs the line, then recalls the next one
            let line = submit()
            uncertainty = .history
            return line
        case 0x7F, 0x08:  // DEL, Ctrl-H
            if cursor > 0 {
                scalars.remove(at: cursor - 1)
                cursor -= 1
            }
        case 0x04:
            // readline deletes under the cursor, but a terminal in canonical mode hands the line
            // to the shell without a newline, so later edits the proxy sees may not apply to it.
            // On an empty line it ends the shell's input.
            if !scalars.isEmpty { markUncertain(.editing) }
            if cursor < scalars.count { scalars.remove(at: cursor) }
        case 0x15:  // Ctrl-U
            scalars.removeSubrange(0..<cursor)
            cursor = 0
        case 0x0B:  // Ctrl-K
            scalars.removeSubrange(cursor...)
        case 0x17:  // Ctrl-W
            killWordBackward()
        case 0x01: cursor = 0  // Ctrl-A
        case 0x05: cursor = scalars.count  // Ctrl-E
        case 0x02: moveLeft()  // Ctrl-B
        case 0x06: moveRight()  // Ctrl-F
        case 0x03:  // Ctrl-C
            reset()
        case 0x0C, 0x07:  // Ctrl-L redraws, Ctrl-G rings the bell: the line is unchanged
            break
        case 0x1B:
            state = .escape
        case 0x09:  // Tab
            markUncertain(.completion)
        case 0x10, 0x0E, 0x12, 0x13:  // Ctrl-P, Ctrl-N, Ctrl-R, Ctrl-S
            markUncertain(.history)
        default:  // Ctrl-T, Ctrl-V, Ctrl-X, Ctrl-Y, Ctrl-_, Ctrl-], NUL, …
            markUncertain(.editing)
        }
        return nil
    }

    /// `ESC [ parameters final`.
    private mutating func controlSequence(parameters: String, final: UInt8) {
        switch (parameters, final) {
        case ("", UInt8(ascii: "A")), ("", UInt8(ascii: "B")):
            markUncertain(.history)
        case ("", UInt8(ascii: "C")), ("1", UInt8(ascii: "C")):
            moveRight()
        case ("", UInt8(ascii: "D")), ("1", UInt8(ascii: "D")):
            moveLeft()
        case ("", UInt8(ascii: "H")), ("1", UInt8(ascii: "~")), ("7", UInt8(ascii: "~")):
            cursor = 0
        case ("", UInt8(ascii: "F")), ("4", UInt8(ascii: "~")), ("8", UInt8(ascii: "~")):
            cursor = scalars.count
        case ("3", UInt8(ascii: "~")):  // Delete
            if cursor < scalars.count { scalars.remove(at: cursor) }
        case ("5", UInt8(ascii: "~")), ("6", UInt8(ascii: "~")):  // Page Up/Down: history in readline
            markUncertain(.history)
        case ("200", UInt8(ascii: "~")):
            isPasting = true
        case ("201", UInt8(ascii: "~")):
            break  // a paste end outside a paste
        case ("", UInt8(ascii: "Z")):  // Shift-Tab
            markUncertain(.completion)
        case (_, UInt8(ascii: "A")), (_, UInt8(ascii: "B")), (_, UInt8(ascii: "C")), (_, UInt8(ascii: "D")):
            markUncertain(.editing)  // arrows with modifiers: word moves, history search
        case (_, UInt8(ascii: "~")) where ["2", "1;5", "3;5"].contains(parameters):
            markUncertain(.editing)  // Insert toggles overwrite; modified Delete kills words
        default:
            // Function keys, focus events, mouse reports and the terminal's answers to queries
            // (cursor position, device attributes) do not change the line.
            break
        }
    }

    // MARK: Editing

    private mutating func submit() -> Line {
        if !pendingUTF8.isEmpty { flushInvalidUTF8() }
        let line = Line(currentText, uncertainty: uncertainty)
        reset()
        return line
    }

    /// Starts a fresh line (the paste state is kept: a paste spans lines).
    private mutating func reset() {
        scalars = []
        cursor = 0
        uncertainty = nil
        pendingUTF8 = []
        pendingUTF8Length = 0
        state = .text
    }

    private mutating func markUncertain(_ reason: Uncertainty) {
        if uncertainty == nil { uncertainty = reason }
    }

    private mutating func moveLeft() { cursor = max(0, cursor - 1) }
    private mutating func moveRight() { cursor = min(scalars.count, cursor + 1) }

    /// readline's `unix-word-rubout`: whitespace before the cursor, then the word before that.
    /// A terminal in canonical mode erases less (Linux stops at the first character that is not
    /// a letter, digit or `_`); where the two differ the line is uncertain.
    private mutating func killWordBackward() {
        var start = cursor
        while start > 0, scalars[start - 1].properties.isWhitespace { start -= 1 }
        while start > 0, !scalars[start - 1].properties.isWhitespace { start -= 1 }
        var kernelStart = cursor
        var seenWord = false
        while kernelStart > 0 {
            let scalar = scalars[kernelStart - 1]
            if scalar.isASCII && (scalar.properties.isAlphabetic || scalar.properties.numericType != nil)
                || scalar == "_"
            {
                seenWord = true
            } else if seenWord {
                break
            }
            kernelStart -= 1
        }
        if kernelStart != start { markUncertain(.editing) }
        scalars.removeSubrange(start..<cursor)
        cursor = start
    }

    /// Inserts one byte of UTF-8 text at the cursor, decoding multi-byte sequences; invalid input
    /// becomes U+FFFD.
    private mutating func insertByte(_ byte: UInt8) {
        if pendingUTF8.isEmpty {
            switch byte {
            case 0x00...0x7F: insert(Unicode.Scalar(byte))
            case 0xC2...0xDF: startUTF8(byte, length: 2)
            case 0xE0...0xEF: startUTF8(byte, length: 3)
            case 0xF0...0xF4: startUTF8(byte, length: 4)
            default: insert("\u{FFFD}")
            }
            return
        }
        guard (0x80...0xBF).contains(byte) else {
            flushInvalidUTF8()
            insertByte(byte)
            return
        }
        pendingUTF8.append(byte)
        guard pendingUTF8.count == pendingUTF8Length else { return }
        var decoder = UTF8()
        var iterator = pendingUTF8.makeIterator()
        pendingUTF8 = []
        if case .scalarValue(let scalar) = decoder.decode(&iterator) {
            insert(scalar)
        } else {
            insert("\u{FFFD}")  // overlong or surrogate encodings
        }
    }

    private mutating func startUTF8(_ byte: UInt8, length: Int) {
        pendingUTF8 = [byte]
        pendingUTF8Length = length
    }

    private mutating func flushInvalidUTF8() {
        pendingUTF8 = []
        insert("\u{FFFD}")
    }

    private mutating func insert(_ scalar: Unicode.Scalar) {
        guard scalars.count < Self.maximumLineLength || mode == .lines else {
            markUncertain(.tooLong)
            return
        }
        scalars.insert(scalar, at: cursor)
        cursor += 1
    }
}
