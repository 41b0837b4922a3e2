/// Helpers for writing ``AuthenticationFailure/detail`` strings.
enum AuthenticationDetail {
    /// The longest piece of client-supplied text quoted in a detail.
    static let maximumQuotedLength = 64

    /// Quotes client-controlled text (an `alg`, a `kid`, a claim value) for a detail: printable
    /// ASCII only, other characters as `?`, cut to ``maximumQuotedLength``. Never use it for a token;
    /// use ``Redacted``.
    static func quote(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars.prefix(maximumQuotedLength) {
            result.unicodeScalars.append(scalar.value >= 0x20 && scalar.value < 0x7F && scalar != "\"" ? scalar : "?")
        }
        if text.unicodeScalars.count > maximumQuotedLength { result += "…" }
        return "\"" + result + "\""
    }
}
