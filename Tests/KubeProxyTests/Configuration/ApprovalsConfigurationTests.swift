import Testing

@testable import KubeProxy

@Suite("approvals settings")
struct ApprovalsConfigurationTests {
    static let base = "tls: {certFile: a, keyFile: b}\nupstream: {inCluster: true}\n"

    @Test("the store defaults to auto and accepts cluster and local")
    func store() throws {
        let omitted = try ProxyConfiguration.parse(Self.base + "approvals: {namespace: x}\n", file: "p.yaml")
        #expect(omitted.approvals == .init(namespace: "x", store: .auto))
        for store in ProxyConfiguration.Approvals.Store.allCases {
            let parsed = try ProxyConfiguration.parse(
                Self.base + "approvals: {store: \(store.rawValue)}\n", file: "p.yaml")
            #expect(parsed.approvals == .init(namespace: "portcullis-system", store: store))
        }
    }

    @Test("a line's wait for approval defaults to five minutes and can be set; it must be positive")
    func lineWait() throws {
        let omitted = try ProxyConfiguration.parse(Self.base + "approvals: {namespace: x}\n", file: "p.yaml")
        #expect(omitted.approvals?.lineChecks.approvalTimeout == .seconds(300))
        #expect(LineCheckSettings.defaultApprovalTimeout == .seconds(300))
        let set = try ProxyConfiguration.parse(Self.base + "approvals: {lineWaitSeconds: 45}\n", file: "p.yaml")
        #expect(set.approvals?.lineWaitSeconds == 45)
        #expect(set.approvals?.lineChecks.approvalTimeout == .seconds(45))
        #expect {
            try ProxyConfiguration.parse(Self.base + "approvals: {lineWaitSeconds: 0}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("approvals.lineWaitSeconds must be at least 1, not 0")
        }
    }

    @Test("an unknown store or setting is an error that names it")
    func strict() {
        #expect {
            try ProxyConfiguration.parse(Self.base + "approvals: {store: memory}\n", file: "p.yaml")
        } throws: { error in
            "\(error)" == "p.yaml: approvals.store must be one of auto, cluster, local, not memory"
        }
        #expect {
            try ProxyConfiguration.parse(Self.base + "approvals: {stor: local}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("3:13: unknown setting \"stor\" in approvals")
        }
    }
}
