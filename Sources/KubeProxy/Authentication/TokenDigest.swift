import Crypto

/// The SHA-256 of a token: what caches and the static token table keep instead of the token.
struct TokenDigest: Sendable, Hashable {
    let bytes: [UInt8]

    init(_ token: some StringProtocol) {
        self.bytes = Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// Compares two digests in time that depends only on their length, never on where they differ.
    func constantTimeEquals(_ other: TokenDigest) -> Bool {
        ConstantTime.equals(bytes, other.bytes)
    }
}

/// Comparisons whose running time does not depend on the bytes compared.
enum ConstantTime {
    /// True when `a` and `b` are equal. Runs in time proportional to the longer input; a length
    /// difference is folded into the result instead of returning early.
    static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let count = max(a.count, b.count)
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for index in 0..<count {
            let left = index < a.count ? a[index] : 0
            let right = index < b.count ? b[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}
