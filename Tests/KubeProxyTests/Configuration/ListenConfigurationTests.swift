import Testing

@testable import KubeProxy

@Suite("listen settings")
struct ListenConfigurationTests {
    static let base = "tls: {certFile: a, keyFile: b}\nupstream: {inCluster: true}\n"

    @Test("the shutdown grace period defaults to 20 s (below Kubernetes' 30 s), can be set, and is not negative")
    func shutdownGrace() throws {
        let omitted = try ProxyConfiguration.parse(Self.base, file: "p.yaml")
        #expect(omitted.listen.shutdownGraceSeconds == 20)
        let set = try ProxyConfiguration.parse(
            Self.base + "listen: {port: 9443, shutdownGraceSeconds: 0}\n", file: "p.yaml")
        #expect(set.listen.shutdownGraceSeconds == 0)
        #expect(set.listen.port == 9443)
        #expect {
            try ProxyConfiguration.parse(Self.base + "listen: {shutdownGraceSeconds: -1}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("listen.shutdownGraceSeconds must be 0 or more, not -1")
        }
    }

    @Test("the idle timeout defaults to 90 s (Go's IdleConnTimeout), can be set, and is at least 1 s")
    func idleTimeout() throws {
        #expect(try ProxyConfiguration.parse(Self.base, file: "p.yaml").listen.idleTimeoutSeconds == 90)
        let set = try ProxyConfiguration.parse(Self.base + "listen: {idleTimeoutSeconds: 1}\n", file: "p.yaml")
        #expect(set.listen.idleTimeoutSeconds == 1)
        #expect {
            try ProxyConfiguration.parse(Self.base + "listen: {idleTimeoutSeconds: 0}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("listen.idleTimeoutSeconds must be 1 or more, not 0")
        }
    }

    @Test("the keep-alive timeout defaults to 15 s, can be set, and is at least 1 s")
    func keepAliveTimeout() throws {
        #expect(try ProxyConfiguration.parse(Self.base, file: "p.yaml").listen.keepAliveTimeoutSeconds == 15)
        let set = try ProxyConfiguration.parse(Self.base + "listen: {keepAliveTimeoutSeconds: 3}\n", file: "p.yaml")
        #expect(set.listen.keepAliveTimeoutSeconds == 3)
        #expect {
            try ProxyConfiguration.parse(Self.base + "listen: {keepAliveTimeoutSeconds: 0}\n", file: "p.yaml")
        } throws: { error in
            "\(error)".contains("listen.keepAliveTimeoutSeconds must be 1 or more, not 0")
        }
    }
}
