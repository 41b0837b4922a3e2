// swift-tools-version:6.2
import PackageDescription

/// Settings shared by the project's own targets: Swift 6 language mode comes from the tools
/// version; warnings fail the build so they never pile up.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
    .product(name: "NIOWebSocket", package: "swift-nio"),
    .product(name: "NIOFoundationCompat", package: "swift-nio"),
    .product(name: "NIOSSL", package: "swift-nio-ssl"),
    .product(name: "NIOExtras", package: "swift-nio-extras"),
]

let package = Package(
    name: "portcullis",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "portcullis", targets: ["PortcullisCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // System zlib: SPDY header compression needs a preset dictionary, which only zlib's API offers.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        // O_DIRECT, which Swift's Glibc module leaves out (a GNU extension), for recordings.
        .systemLibrary(name: "CFileIO"),
        .target(
            name: "SPDY",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Policy",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "KubeProxy",
            dependencies: [
                "SPDY", "Policy", "CFileIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Yams", package: "Yams"),
            ] + nio,
            swiftSettings: strict
        ),
        .target(
            name: "Webhook",
            dependencies: [
                "Policy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ] + nio,
            swiftSettings: strict
        ),
        // Drives scripts/testenv: the local cluster behind `portcullis sandbox` and the integration tests.
        .target(
            name: "Sandbox",
            dependencies: ["Webhook", "Policy", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PortcullisCLI",
            dependencies: [
                "KubeProxy", "Webhook", "Policy", "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Benchmarks: executables run by hand or by scripts/benchmark, never as tests.
        .executableTarget(
            name: "SPDYBenchmark", dependencies: ["SPDY", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/SPDYBenchmark", swiftSettings: strict),
        .executableTarget(
            name: "PolicyBenchmark", dependencies: ["Policy"], path: "Benchmarks/PolicyBenchmark",
            swiftSettings: strict),
        // Captured AdmissionReviews over keep-alive TLS: 100 policies against an allow-all webhook.
        .executableTarget(
            name: "WebhookBenchmark",
            dependencies: [
                "Webhook", "Policy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Benchmarks/WebhookBenchmark", swiftSettings: strict),
        // Helpers for tests only: the shared test cluster, kubectl matrix, processes and ptys.
        .target(
            name: "TestSupport",
            dependencies: ["Sandbox"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SPDYTests",
            dependencies: [
                "SPDY",
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Real kubectl (1.20-1.37) and the Python client against a test server built on the SPDY module.
        .testTarget(
            name: "SPDYInteropTests",
            dependencies: [
                "SPDY", "TestSupport", "Sandbox",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox"], swiftSettings: strict),
        .testTarget(
            name: "WebhookTests", dependencies: ["Webhook", "Policy"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "KubeProxyTests",
            dependencies: [
                "KubeProxy", "Policy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .testTarget(name: "PolicyTests", dependencies: ["Policy"], exclude: ["Fixtures"], swiftSettings: strict),
        // Reads the cel-spec conformance data from ../shared (third-party data, never copied here).
        .testTarget(name: "CELConformanceTests", dependencies: ["Policy"], swiftSettings: strict),
        // Compares against an independent CEL engine from PyPI (installed into the cache on first run).
        .testTarget(name: "CELDifferentialTests", dependencies: ["Policy", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "Webhook", "Policy", "KubeProxy", "SPDY",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict),
    ]
)
