import Testing

@testable import KubeProxy

@Suite("policies settings")
struct PoliciesConfigurationTests {
    static let base = "tls: {certFile: a, keyFile: b}\nupstream: {inCluster: true}\n"

    @Test("cluster policies are off unless asked for, and a wrong type or a misspelt key is refused")
    func clusterFlag() throws {
        let omitted = try ProxyConfiguration.parse(Self.base, file: "p.yaml")
        #expect(omitted.policies.cluster == false)
        let set = try ProxyConfiguration.parse(Self.base + "policies: {cluster: true, paths: [x]}\n", file: "p.yaml")
        #expect(set.policies.cluster == true)
        #expect(set.policies.paths == ["x"])
        #expect(throws: (any Error).self) {
            try ProxyConfiguration.parse(Self.base + "policies: {cluster: maybe}\n", file: "p.yaml")
        }
        #expect {
            try ProxyConfiguration.parse(Self.base + "policies: {clusters: true}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("clusters")
        }
    }
}
