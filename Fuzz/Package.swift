// swift-tools-version:6.2
// libFuzzer harness for the SPDY module. Build and run with scripts/fuzz-spdy.sh SECONDS.
//
// The SPDY and CZlib targets are symlinks to the main package's sources, so the harness fuzzes exactly
// the shipped code without the main package exporting a library product.
import PackageDescription

let package = Package(
    name: "SPDYFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "SPDY",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzSPDY",
            dependencies: [
                "SPDY",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
