/// Decoding with defaults: the synthesized `Decodable` ignores property defaults, so a file that
/// leaves out `listen:` would otherwise fail.
extension ProxyConfiguration {
    private enum Keys: String, CodingKey {
        case listen, tls, upstream, policies, authentication, approvals, audit, recordings, management
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        listen = try container.decodeIfPresent(Listen.self, forKey: .listen) ?? Listen()
        tls = try container.decode(TLS.self, forKey: .tls)
        upstream = try container.decodeIfPresent(Upstream.self, forKey: .upstream) ?? Upstream()
        policies = try container.decodeIfPresent(Policies.self, forKey: .policies) ?? Policies()
        authentication = try container.decodeIfPresent(Authentication.self, forKey: .authentication) ?? Authentication()
        approvals = try container.decodeIfPresent(Approvals.self, forKey: .approvals)
        audit = try container.decodeIfPresent(Audit.self, forKey: .audit) ?? Audit()
        recordings = try container.decodeIfPresent(Recordings.self, forKey: .recordings)
        management = try container.decodeIfPresent(Management.self, forKey: .management)
    }

    public init(tls: TLS) {
        self.tls = tls
    }
}

extension ProxyConfiguration.Listen {
    private enum Keys: String, CodingKey {
        case host, port, reusePort, shutdownGraceSeconds, idleTimeoutSeconds, keepAliveTimeoutSeconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? "0.0.0.0"
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 8443
        reusePort = try container.decodeIfPresent(Bool.self, forKey: .reusePort) ?? false
        shutdownGraceSeconds = try container.decodeIfPresent(Int.self, forKey: .shutdownGraceSeconds) ?? 20
        guard shutdownGraceSeconds >= 0 else {
            throw ProxyConfiguration.Error(
                description: "listen.shutdownGraceSeconds must be 0 or more, not \(shutdownGraceSeconds)")
        }
        idleTimeoutSeconds = try container.decodeIfPresent(Int.self, forKey: .idleTimeoutSeconds) ?? 90
        guard idleTimeoutSeconds >= 1 else {
            throw ProxyConfiguration.Error(
                description: "listen.idleTimeoutSeconds must be 1 or more, not \(idleTimeoutSeconds)")
        }
        keepAliveTimeoutSeconds = try container.decodeIfPresent(Int.self, forKey: .keepAliveTimeoutSeconds) ?? 15
        guard keepAliveTimeoutSeconds >= 1 else {
            throw ProxyConfiguration.Error(
                description: "listen.keepAliveTimeoutSeconds must be 1 or more, not \(keepAliveTimeoutSeconds)")
        }
    }
}

extension ProxyConfiguration.Policies {
    private enum Keys: String, CodingKey { case paths, cluster, defaultOutcome }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        paths = try container.decodeIfPresent([String].self, forKey: .paths) ?? []
        cluster = try container.decodeIfPresent(Bool.self, forKey: .cluster) ?? false
        defaultOutcome = try container.decodeIfPresent(String.self, forKey: .defaultOutcome) ?? "Allow"
    }
}

extension ProxyConfiguration.TokenReview {
    private enum Keys: String, CodingKey { case enabled, audiences }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        audiences = try container.decodeIfPresent([String].self, forKey: .audiences) ?? []
    }
}

extension ProxyConfiguration.Approvals {
    private enum Keys: String, CodingKey { case namespace, store, lineWaitSeconds }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace) ?? "portcullis-system"
        lineWaitSeconds = try container.decodeIfPresent(Int.self, forKey: .lineWaitSeconds)
        if let lineWaitSeconds, lineWaitSeconds < 1 {
            throw ProxyConfiguration.Error(
                description: "approvals.lineWaitSeconds must be at least 1, not \(lineWaitSeconds)")
        }
        let store = try container.decodeIfPresent(String.self, forKey: .store) ?? "auto"
        guard let parsed = Store(rawValue: store) else {
            throw ProxyConfiguration.Error(
                description:
                    "approvals.store must be one of \(Store.allCases.map(\.rawValue).joined(separator: ", ")), not \(store)"
            )
        }
        self.store = parsed
    }
}

extension ProxyConfiguration.Management {
    private enum Keys: String, CodingKey { case host, port }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? "0.0.0.0"
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 9090
    }
}

extension ProxyConfiguration.Recordings {
    private enum Keys: String, CodingKey { case directory, input, failClosed, portForwardCaptures }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        directory = try container.decode(String.self, forKey: .directory)
        input = try container.decodeIfPresent(Bool.self, forKey: .input) ?? false
        failClosed = try container.decodeIfPresent(Bool.self, forKey: .failClosed) ?? false
        portForwardCaptures = try container.decodeIfPresent(Bool.self, forKey: .portForwardCaptures) ?? false
    }
}
