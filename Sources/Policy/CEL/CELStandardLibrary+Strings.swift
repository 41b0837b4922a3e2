import Foundation

/// The standard string functions `contains`, `startsWith` and `endsWith` (cel-spec
/// "Standard Definitions"); `matches` is with the conversions in `CELStandardLibrary.swift`.
extension CELStandardLibrary {
    static let strings: [CELFunctionDecl] = [
        .member("contains", ["string, string -> bool"], cost: .traversal, .binary(contains)),
        .member("startsWith", ["string, string -> bool"], cost: .traversal, .binary(startsWith)),
        .member("endsWith", ["string, string -> bool"], cost: .traversal, .binary(endsWith)),
    ]

    static func contains(_ subject: CELValue, _ part: CELValue) throws(CELError) -> CELValue {
        guard case .string(let text) = subject, case .string(let needle) = part else {
            throw CELError.noOverload("contains", subject, part)
        }
        return .bool(needle.isEmpty || CELText.find(Array(text.utf8), Array(needle.utf8), from: 0) != nil)
    }

    static func startsWith(_ subject: CELValue, _ part: CELValue) throws(CELError) -> CELValue {
        guard case .string(let text) = subject, case .string(let prefix) = part else {
            throw CELError.noOverload("startsWith", subject, part)
        }
        return .bool(CELText.hasPrefix(text, prefix))
    }

    static func endsWith(_ subject: CELValue, _ part: CELValue) throws(CELError) -> CELValue {
        guard case .string(let text) = subject, case .string(let suffix) = part else {
            throw CELError.noOverload("endsWith", subject, part)
        }
        return .bool(CELText.hasSuffix(text, suffix))
    }
}

/// Substring search on code units or scalars. Swift's `String` comparisons use canonical
/// equivalence; CEL compares code points, so searches work on raw arrays.
enum CELText {
    /// Needles up to this long are searched directly (at most this many comparisons per
    /// position); longer ones with Knuth–Morris–Pratt, whose time is linear in both lengths.
    static let directSearchLimit = 16

    /// The first position of `needle` in `haystack` at or after `from`.
    static func find<T: Equatable>(_ haystack: [T], _ needle: [T], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        if needle.isEmpty { return from <= haystack.count ? from : nil }
        if needle.count > directSearchLimit { return linearFind(haystack, needle, from: from) }
        guard let first = needle.first else { return nil }
        var position = from
        let last = haystack.count - needle.count
        while position <= last {
            if haystack[position] == first {
                var matched = true
                for offset in 1..<needle.count where haystack[position + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return position }
            }
            position += 1
        }
        return nil
    }

    /// Knuth–Morris–Pratt: the first position of a non-empty `needle` at or after `from`.
    private static func linearFind<T: Equatable>(_ haystack: [T], _ needle: [T], from: Int) -> Int? {
        // border[i]: the length of the longest proper prefix of needle[...i] that is also its suffix.
        var border = [Int](repeating: 0, count: needle.count)
        var length = 0
        for index in 1..<needle.count {
            while length > 0 && needle[index] != needle[length] { length = border[length - 1] }
            if needle[index] == needle[length] { length += 1 }
            border[index] = length
        }
        var matched = 0
        var position = max(from, 0)
        while position < haystack.count {
            while matched > 0 && haystack[position] != needle[matched] { matched = border[matched - 1] }
            if haystack[position] == needle[matched] { matched += 1 }
            if matched == needle.count { return position - matched + 1 }
            position += 1
        }
        return nil
    }

    /// The last position of `needle` in `haystack` starting at or before `from`.
    static func findLast<T: Equatable>(_ haystack: [T], _ needle: [T], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        if needle.count > directSearchLimit {
            // The last match at or before `from` is the first match of the reversed needle in the
            // reversed haystack at or after the mirrored position.
            let start = min(from, haystack.count - needle.count)
            guard start >= 0 else { return nil }
            let mirrored = haystack.count - needle.count - start
            return linearFind(haystack.reversed(), needle.reversed(), from: mirrored).map {
                haystack.count - needle.count - $0
            }
        }
        var position = min(from, haystack.count - needle.count)
        while position >= 0 {
            if haystack[position..<(position + needle.count)].elementsEqual(needle) { return position }
            position -= 1
        }
        return nil
    }

    /// Whether `text` starts with `prefix`, code unit by code unit: compared in place (one
    /// `memcmp`) rather than through two UTF-8 iterators.
    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        let count = prefix.utf8.count
        guard count <= text.utf8.count else { return false }
        return equalBytes(text, from: 0, prefix, count: count) ?? text.utf8.starts(with: prefix.utf8)
    }

    /// Whether `text` ends with `suffix`, compared in place like `hasPrefix`.
    static func hasSuffix(_ text: String, _ suffix: String) -> Bool {
        let count = suffix.utf8.count
        let start = text.utf8.count - count
        guard start >= 0 else { return false }
        return equalBytes(text, from: start, suffix, count: count)
            ?? text.utf8.dropFirst(start).elementsEqual(suffix.utf8)
    }

    /// Whether `count` bytes of `text` from `offset` equal the first `count` bytes of `other`;
    /// nil when either string is not contiguous UTF-8 (bridged), for the caller to compare otherwise.
    private static func equalBytes(_ text: String, from offset: Int, _ other: String, count: Int) -> Bool? {
        let compared = text.utf8.withContiguousStorageIfAvailable { first in
            other.utf8.withContiguousStorageIfAvailable { second in
                guard count > 0, let x = first.baseAddress, let y = second.baseAddress else { return true }
                return memcmp(x + offset, y, count) == 0
            }
        }
        if case .some(.some(let equal)) = compared { return equal }
        return nil
    }

    /// Code-point equality: Swift's `==` would also equate canonically equivalent strings.
    @inline(__always)
    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        guard lhs.utf8.count == rhs.utf8.count else { return false }
        // In place, without the copies (a retain and release each) that `withUTF8` needs.
        let compared = lhs.utf8.withContiguousStorageIfAvailable { first in
            rhs.utf8.withContiguousStorageIfAvailable { second in
                guard let x = first.baseAddress, let y = second.baseAddress else { return true }
                return memcmp(x, y, first.count) == 0
            }
        }
        if case .some(.some(let equal)) = compared { return equal }
        return lhs.utf8.elementsEqual(rhs.utf8)
    }

    static func hash(_ text: String, into hasher: inout Hasher) {
        var copy = text
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
