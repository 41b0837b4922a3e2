import SwiftASN1
import Testing
import X509

@testable import KubeProxy

@Suite("Client certificates")
struct ClientCertificateAuthenticatorTests {
    let ca: TestCertificateAuthority

    init() throws {
        ca = try TestCertificateAuthority()
    }

    @Test("the leaf's CN becomes the user name and each O a group")
    func mapsSubject() async throws {
        let leaf = try ca.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationName("developers")
                OrganizationName("sre")
                CommonName("alice")
            })
        let result = await ClientCertificateAuthenticator().authenticate(
            Credentials(clientCertificateChain: [leaf, ca.certificate]))
        #expect(result.identity == Identity(name: "alice", groups: ["developers", "sre"], method: .clientCertificate))
    }

    @Test("without a certificate the authenticator does not apply")
    func noCertificate() async {
        #expect(await ClientCertificateAuthenticator().authenticate(Credentials(bearerToken: "x")).isNotApplicable)
    }

    @Test("a leaf without a CN, with two CNs, or only for server authentication is rejected")
    func rejectsUnmappableLeaves() async throws {
        let noCN = try ca.issueClientCertificate(subject: try DistinguishedName { OrganizationName("developers") })
        let twoCNs = try ca.issueClientCertificate(
            subject: try DistinguishedName {
                CommonName("alice")
                CommonName("admin")
            })
        let serverOnly = try ca.issueClientCertificate(
            subject: try DistinguishedName { CommonName("alice") }, usages: [.serverAuth])
        for leaf in [noCN, twoCNs, serverOnly] {
            let result = await ClientCertificateAuthenticator().authenticate(
                Credentials(clientCertificateChain: [leaf]))
            #expect(result.failure?.kind == .invalidCertificate, "\(leaf.subject)")
        }
        let relaxed = ClientCertificateAuthenticator(requireClientAuthUsage: false)
        #expect(await relaxed.authenticate(Credentials(clientCertificateChain: [serverOnly])).identity?.name == "alice")
    }

    @Test("a leaf without an extended key usage extension is accepted")
    func noExtendedKeyUsage() async throws {
        let leaf = try ca.issueClientCertificate(subject: try DistinguishedName { CommonName("bob") }, usages: nil)
        #expect(
            await ClientCertificateAuthenticator().authenticate(Credentials(clientCertificateChain: [leaf])).identity?
                .name == "bob")
    }

    @Test("credentials can be built from the DER bytes the TLS layer hands over")
    func fromDER() async throws {
        let leaf = try ca.issueClientCertificate(subject: try DistinguishedName { CommonName("carol") })
        var serializer = DER.Serializer()
        try serializer.serialize(leaf)
        let credentials = try Credentials(bearerToken: nil, clientCertificateChainDER: [serializer.serializedBytes])
        #expect(credentials.clientCertificateChain == [leaf])
        #expect(await ClientCertificateAuthenticator().authenticate(credentials).identity?.name == "carol")
    }
}
