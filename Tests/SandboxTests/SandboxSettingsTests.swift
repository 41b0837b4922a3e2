import Foundation
import Sandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("sandbox settings")
struct SandboxSettingsTests {
    @Test("free ports are distinct, below the kernel's ephemeral range, and survive a round trip through sandbox.env")
    func roundTrip() throws {
        let settings = try SandboxSettings.freePorts()
        let ports = [settings.proxyPort, settings.managementPort, settings.secondManagementPort, settings.webhookPort]
        #expect(Set(ports).count == 4)
        #expect(ports.allSatisfy(SandboxSettings.portRange.contains))
        let ephemeral = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let ephemeralStart = try #require(ephemeral.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) })
        #expect(SandboxSettings.portRange.upperBound < ephemeralStart)
        #expect(try SandboxSettings(envFileContents: settings.envFileContents) == settings)
    }

    @Test("chosen ports are reserved for other pickers (the test cluster's), and stale reservations are taken over")
    func reservations() throws {
        let settings = try SandboxSettings.freePorts()
        for port in [settings.proxyPort, settings.managementPort, settings.secondManagementPort, settings.webhookPort] {
            #expect(!SandboxSettings.reserve(port), "port \(port) is reserved already")
        }
        let path = "\(SandboxSettings.reservations)/\(settings.proxyPort)"
        var times = [timeval(tv_sec: time(nil) - 3600, tv_usec: 0), timeval(tv_sec: time(nil) - 3600, tv_usec: 0)]
        #expect(utimes(path, &times) == 0)
        #expect(SandboxSettings.reserve(settings.proxyPort), "an hour-old reservation is stale")
    }

    @Test("a sandbox.env without every port is refused")
    func incomplete() {
        #expect(throws: SandboxError.self) {
            try SandboxSettings(envFileContents: "PROXY_PORT=1\nWEBHOOK_PORT=2\n")
        }
        // Written by a sandbox from before the second replica.
        #expect(throws: SandboxError.self) {
            try SandboxSettings(envFileContents: "PROXY_PORT=1\nMANAGEMENT_PORT=2\nWEBHOOK_PORT=3\n")
        }
    }
}
