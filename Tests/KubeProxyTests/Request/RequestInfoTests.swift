import KubeProxy
import Policy
import Testing

@Suite("RequestInfo parsing, as the apiserver parses")
struct RequestInfoTests {
    struct Case: Sendable, CustomStringConvertible {
        let method: String
        let target: String
        let verb: String
        let group: String
        let namespace: String
        let resource: String
        let name: String
        let subresource: String
        var description: String { "\(method) \(target)" }
    }

    static let cases: [Case] = [
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods", verb: "list", group: "", namespace: "default",
            resource: "pods", name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods/foo", verb: "get", group: "", namespace: "default",
            resource: "pods", name: "foo", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods?watch=true", verb: "watch", group: "",
            namespace: "default", resource: "pods", name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods?watch=", verb: "watch", group: "",
            namespace: "default", resource: "pods", name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods?watch=0", verb: "list", group: "",
            namespace: "default", resource: "pods", name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/watch/namespaces/default/pods", verb: "watch", group: "",
            namespace: "default", resource: "pods", name: "", subresource: ""),
        .init(
            method: "POST", target: "/api/v1/namespaces/default/pods", verb: "create", group: "", namespace: "default",
            resource: "pods", name: "", subresource: ""),
        .init(
            method: "PUT", target: "/api/v1/namespaces/default/pods/foo", verb: "update", group: "",
            namespace: "default", resource: "pods", name: "foo", subresource: ""),
        .init(
            method: "PATCH", target: "/api/v1/namespaces/default/pods/foo", verb: "patch", group: "",
            namespace: "default", resource: "pods", name: "foo", subresource: ""),
        .init(
            method: "DELETE", target: "/api/v1/namespaces/default/pods/foo", verb: "delete", group: "",
            namespace: "default", resource: "pods", name: "foo", subresource: ""),
        .init(
            method: "DELETE", target: "/api/v1/namespaces/default/pods", verb: "deletecollection", group: "",
            namespace: "default", resource: "pods", name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/default/pods/foo/log?follow=true", verb: "get", group: "",
            namespace: "default", resource: "pods", name: "foo", subresource: "log"),
        .init(
            method: "POST", target: "/api/v1/namespaces/prod/pods/web/exec?command=ls", verb: "create", group: "",
            namespace: "prod", resource: "pods", name: "web", subresource: "exec"),
        .init(
            method: "GET", target: "/apis/apps/v1/namespaces/ns/deployments/d/scale", verb: "get", group: "apps",
            namespace: "ns", resource: "deployments", name: "d", subresource: "scale"),
        .init(
            method: "GET", target: "/api/v1/namespaces", verb: "list", group: "", namespace: "", resource: "namespaces",
            name: "", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/foo", verb: "get", group: "", namespace: "foo",
            resource: "namespaces", name: "foo", subresource: ""),
        .init(
            method: "PUT", target: "/api/v1/namespaces/foo/status", verb: "update", group: "", namespace: "foo",
            resource: "namespaces", name: "foo", subresource: "status"),
        .init(
            method: "PUT", target: "/api/v1/namespaces/foo/finalize", verb: "update", group: "", namespace: "foo",
            resource: "namespaces", name: "foo", subresource: "finalize"),
        .init(
            method: "GET", target: "/api/v1/nodes/n1", verb: "get", group: "", namespace: "", resource: "nodes",
            name: "n1", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/proxy/namespaces/ns/pods/p/a/b", verb: "proxy", group: "", namespace: "ns",
            resource: "pods", name: "p", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/ns/pods/p/proxy/a/b", verb: "get", group: "", namespace: "ns",
            resource: "pods", name: "p", subresource: "proxy"),
        .init(
            method: "GET", target: "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Dtls", verb: "list",
            group: "", namespace: "ns", resource: "secrets", name: "tls", subresource: ""),
        .init(
            method: "GET", target: "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name!%3Dtls", verb: "list",
            group: "", namespace: "ns", resource: "secrets", name: "", subresource: ""),
        .init(
            method: "GET", target: "/apis/portcullis.dev/v1alpha1/accesspolicies/p", verb: "get",
            group: "portcullis.dev", namespace: "", resource: "accesspolicies", name: "p", subresource: ""),
    ]

    @Test("resource requests", arguments: cases)
    func resourceRequests(_ expected: Case) throws {
        let info = try RequestInfo(method: expected.method, target: expected.target)
        #expect(info.isResourceRequest)
        #expect(info.verb == expected.verb)
        #expect(info.apiGroup == expected.group)
        #expect(info.namespace == expected.namespace)
        #expect(info.resource == expected.resource)
        #expect(info.name == expected.name)
        #expect(info.subresource == expected.subresource)
    }

    @Test(
        "discovery and other non-resource paths",
        arguments: [
            "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/healthz", "/openapi/v2", "/",
        ])
    func nonResource(path: String) throws {
        let info = try RequestInfo(method: "GET", target: path)
        #expect(!info.isResourceRequest)
        #expect(info.verb == "get")
    }

    @Test(
        "ambiguous paths are refused rather than guessed",
        arguments: [
            "/api/v1/namespaces/a%2Fb/pods", "/api/v1/namespaces/default/../kube-system/secrets",
            "/api/v1/namespaces/default/pods/%2e%2e/x", "//api/v1/secrets", "/api/v1//namespaces/x/secrets",
            "/api/v1/namespaces/x/pods/%zz", "/api/v1/namespaces/x/pods/a%00b", "api/v1/pods",
        ])
    func ambiguous(target: String) {
        #expect(throws: RequestInfo.ParseError.self) { try RequestInfo(method: "GET", target: target) }
    }

    @Test("the forwarded path re-encodes the segments that were authorized")
    func canonicalPath() throws {
        let info = try RequestInfo(method: "GET", target: "/api/v1/namespaces/d%65v/configmaps/a%20b")
        #expect(info.namespace == "dev")
        #expect(info.name == "a b")
        #expect(info.canonicalPath == "/api/v1/namespaces/dev/configmaps/a%20b")
        let plain = "/apis/apps/v1/namespaces/dev/deployments/web-1.a_b~c:d@e/scale"
        #expect(try RequestInfo(method: "GET", target: plain).canonicalPath == plain)
        #expect(try RequestInfo(method: "GET", target: "/api/v1/").canonicalPath == "/api/v1/")
        #expect(try RequestInfo(method: "GET", target: "/").canonicalPath == "/")
        let unicode = try RequestInfo(method: "GET", target: "/api/v1/namespaces/dev/configmaps/%C3%A9t%C3%A9")
        #expect(unicode.name == "été")
        #expect(unicode.canonicalPath == "/api/v1/namespaces/dev/configmaps/%C3%A9t%C3%A9")
    }

    @Test("exec parameters parse like the apiserver and forward canonically")
    func execParameters() throws {
        let target =
            "/api/v1/namespaces/prod/pods/web/exec?command=sh&command=-c&command=echo%20hi%26%26id&stdin=&tty=False&stdout=1&container=app&stderr=true"
        let parameters = StreamParameters(query: RequestInfo.query(of: target))
        #expect(parameters.command == ["sh", "-c", "echo hi&&id"])
        #expect(parameters.stdin, "an empty value is true for the apiserver")
        #expect(!parameters.tty)
        #expect(
            parameters.canonicalQuery
                == "command=sh&command=-c&command=echo%20hi%26%26id&container=app&stderr=true&stdin=true&stdout=true")
    }

    @Test("streams are create on the subresource with exec attributes, whatever the method")
    func streamAttributes() throws {
        for method in ["GET", "POST"] {
            let target = "/api/v1/namespaces/prod/pods/web/exec?command=ls&container=app&stdout=true"
            let info = try RequestInfo(method: method, target: target)
            let attributes = info.attributes(user: .init(name: "alice"), query: RequestInfo.query(of: target))
            #expect(attributes.verb == "create")
            #expect(attributes.operation == .connect)
            #expect(attributes.exec?.command == ["ls"])
            #expect(attributes.resourceDescription == "pods/exec")
        }
    }
}
