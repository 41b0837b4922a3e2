import Foundation

/// Sends TokenReviews to the apiserver with the proxy's own identity (it needs `create` on
/// `tokenreviews`, e.g. through `system:auth-delegator`).
public struct UpstreamTokenReviewClient: TokenReviewClient {
    let client: KubernetesClient

    public init(client: KubernetesClient) {
        self.client = client
    }

    public func review(token: String, audiences: [String]) async throws -> TokenReviewResponse {
        let response = try await client.send(
            .POST, TokenReviewCodec.path, body: Data(TokenReviewCodec.encodeRequest(token: token, audiences: audiences))
        )
        return try TokenReviewCodec.decodeResponse(Array(response.body))
    }
}
