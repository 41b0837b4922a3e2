import Crypto
import Foundation

/// A secret, such as a bearer token, reduced to what may appear in logs, audit events and
/// ``AuthenticationFailure/detail``: a short SHA-256 fingerprint.
///
/// The convention for this module: a token is never interpolated into a string. Code that needs
/// to refer to one writes `Redacted(token)`, whose every textual form is `[redacted sha256:1a2b3c4d]`.
/// Eight hex digits (32 bits) are enough to correlate log lines about the same token and far too
/// few to recover or test a guessed token against with any confidence for a long random token.
/// The value does not keep the secret.
public struct Redacted: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// How many hex digits of the SHA-256 digest the fingerprint keeps.
    public static let fingerprintHexDigits = 8

    /// `sha256:` followed by the first ``fingerprintHexDigits`` hex digits of the secret's SHA-256.
    public let fingerprint: String

    public init(_ secret: some StringProtocol) {
        let digest = SHA256.hash(data: Array(secret.utf8))
        let hex = digest.prefix(Self.fingerprintHexDigits / 2).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }
        self.fingerprint = "sha256:" + hex.joined()
    }

    public var description: String { "[redacted \(fingerprint)]" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["fingerprint": fingerprint]) }

    /// Returns `text` with every occurrence of `secret` replaced by its redacted form: for messages
    /// that come from elsewhere (an upstream error, a thrown error's description) and might quote it.
    public static func scrub(_ text: String, removing secret: String) -> String {
        guard !secret.isEmpty, text.contains(secret) else { return text }
        return text.replacingOccurrences(of: secret, with: Redacted(secret).description)
    }
}
