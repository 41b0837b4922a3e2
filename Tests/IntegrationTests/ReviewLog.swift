import Foundation
import Synchronization

/// The raw bodies of the reviews a webhook under test received, in order: what the real
/// apiserver sent, for tests that check it and for the golden fixtures.
final class ReviewLog: Sendable {
    struct Entry: Sendable {
        /// `validate` or `mutate`.
        let endpoint: String
        /// The body exactly as received.
        let body: Data

        /// The review's `request`, parsed (nil when the body was not a review).
        var request: [String: Any]? {
            let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
            return root?["request"] as? [String: Any]
        }
    }

    private let entries = Mutex<[Entry]>([])

    func record(endpoint: String, body: Data) {
        entries.withLock { $0.append(Entry(endpoint: endpoint, body: body)) }
    }

    /// The newest review sent to `endpoint` for an object with this name, resource and operation.
    func last(
        _ endpoint: String, operation: String, resource: String, subResource: String = "", name: String,
        where extra: ([String: Any]) -> Bool = { _ in true }
    ) -> Entry? {
        entries.withLock { $0 }.last { entry in
            guard entry.endpoint == endpoint, let request = entry.request else { return false }
            return request["operation"] as? String == operation
                && (request["resource"] as? [String: Any])?["resource"] as? String == resource
                && (request["subResource"] as? String ?? "") == subResource
                && request["name"] as? String == name && extra(request)
        }
    }
}
