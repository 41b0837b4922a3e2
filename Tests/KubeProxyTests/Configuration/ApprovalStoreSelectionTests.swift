import Testing

@testable import KubeProxy

@Suite("approvals store selection")
struct ApprovalStoreSelectionTests {
    @Test("auto picks the local store when the apiserver does not serve AccessRequests; the setting can force either")
    func selection() async throws {
        let harness = try await ProxyHarness(policies: RequestSmugglingTests.policies)
        defer { Task { try? await harness.shutdown() } }
        let upstream = harness.upstreamConfiguration
        #expect(try await !ClusterApprovals.isServed(by: KubernetesClient(configuration: upstream)))
        let auto = try await ProxyRuntime.approvalStore(.init(namespace: "a"), upstream: upstream)
        #expect(auto is LocalApprovals)
        #expect(auto?.namespace == "a")
        let cluster = try await ProxyRuntime.approvalStore(
            .init(namespace: "b", store: .cluster), upstream: upstream)
        #expect(cluster is ClusterApprovals)
        #expect(try await ProxyRuntime.approvalStore(nil, upstream: upstream) == nil)
        #expect(
            harness.upstream.requests.withLock { $0.map(\.uri) }
                == Array(repeating: "/apis/portcullis.dev/v1alpha1", count: 2),
            "one discovery per auto, none when forced")
    }
}
