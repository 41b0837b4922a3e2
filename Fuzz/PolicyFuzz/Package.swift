// swift-tools-version:6.2
// libFuzzer harness for the Policy module: the CEL parser, checker and evaluator, and the YAML
// policy loader and compiler. Build and run with scripts/fuzz-policy.sh SECONDS.
//
// The Policy target is a symlink to the main package's sources, so the harness fuzzes exactly the
// shipped code without the main package exporting a library product.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "PolicyFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2")
    ],
    targets: [
        .target(
            name: "Policy",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .executableTarget(name: "FuzzPolicy", dependencies: ["Policy"], swiftSettings: strict),
    ]
)
