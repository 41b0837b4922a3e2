import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The ports a sandbox's proxy replicas and webhook listen on, chosen once when the sandbox starts and kept
/// in `.sandbox/sandbox.env` so that a second `--detach` finds the running sandbox where its
/// kubeconfigs say it is.
public struct SandboxSettings: Sendable, Equatable {
    /// Shared by both proxy replicas (SO_REUSEPORT): one address, as behind a Service.
    public var proxyPort: Int
    /// The first replica's `/healthz`, `/readyz` and `/metrics`.
    public var managementPort: Int
    /// The second replica's.
    public var secondManagementPort: Int
    public var webhookPort: Int

    public init(proxyPort: Int, managementPort: Int, secondManagementPort: Int, webhookPort: Int) {
        self.proxyPort = proxyPort
        self.managementPort = managementPort
        self.secondManagementPort = secondManagementPort
        self.webhookPort = webhookPort
    }

    /// Four ports free on 127.0.0.1 right now, chosen like the test cluster's: at random below the
    /// kernel's ephemeral range, so an outgoing connection cannot take one before the proxy or
    /// webhook binds it.
    public static func freePorts() throws(SandboxError) -> SandboxSettings {
        var chosen: [Int] = []
        var attempts = 0
        while chosen.count < 4 {
            attempts += 1
            guard attempts < 1000 else { throw SandboxError(.scriptFailed, "cannot find free ports on 127.0.0.1") }
            let port = Int.random(in: portRange)
            if !chosen.contains(port), canBind(port), reserve(port) { chosen.append(port) }
        }
        return SandboxSettings(
            proxyPort: chosen[0], managementPort: chosen[1], secondManagementPort: chosen[2], webhookPort: chosen[3])
    }

    /// 20000 up to the start of the ephemeral range (`ip_local_port_range`).
    public static var portRange: ClosedRange<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let low = text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
        return 20000...(low > 21024 ? low - 1 : 32767)
    }

    public init(envFileContents text: String) throws(SandboxError) {
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let port = Int(parts[1]) { values[String(parts[0])] = port }
        }
        guard let proxy = values["PROXY_PORT"], let management = values["MANAGEMENT_PORT"],
            let secondManagement = values["SECOND_MANAGEMENT_PORT"], let webhook = values["WEBHOOK_PORT"]
        else {
            throw SandboxError(
                .malformedClusterDescription,
                "sandbox.env needs PROXY_PORT, MANAGEMENT_PORT, SECOND_MANAGEMENT_PORT and WEBHOOK_PORT")
        }
        self.init(
            proxyPort: proxy, managementPort: management, secondManagementPort: secondManagement, webhookPort: webhook)
    }

    public var envFileContents: String {
        """
        # Written by `portcullis sandbox`: where the sandbox's components listen on 127.0.0.1.
        PROXY_PORT=\(proxyPort)
        MANAGEMENT_PORT=\(managementPort)
        SECOND_MANAGEMENT_PORT=\(secondManagementPort)
        WEBHOOK_PORT=\(webhookPort)

        """
    }

    /// Where pickers of test ports reserve them, shared with scripts/testenv/testenv.sh: a port
    /// chosen here is bound only once the sandbox's cluster is up, and a test cluster starting
    /// meanwhile must not choose it too (it did, and its apiserver failed to bind).
    public static let reservations = "/tmp/portcullis-ports"
    /// A reservation older than this is stale: its port is bound by now, or abandoned.
    public static let reservationLifetime: TimeInterval = 600

    /// Reserves `port` by creating its directory (atomic), taking over a stale reservation.
    public static func reserve(_ port: Int) -> Bool {
        mkdir(reservations, 0o777)
        let path = "\(reservations)/\(port)"
        if mkdir(path, 0o755) == 0 { return true }
        var status = stat()
        guard stat(path, &status) == 0,
            Date().timeIntervalSince1970 - TimeInterval(status.st_mtim.tv_sec) > reservationLifetime
        else { return false }
        rmdir(path)
        return mkdir(path, 0o755) == 0
    }

    private static func canBind(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
