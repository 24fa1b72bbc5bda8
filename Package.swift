// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "chatmail-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chatmail-supervisor", targets: ["chatmail-supervisor"]),
        .executable(name: "chatmailctl", targets: ["chatmailctl"]),
        .executable(name: "chatmail-imap", targets: ["chatmail-imap"]),
        .executable(name: "chatmail-turn", targets: ["chatmail-turn"]),
        .executable(name: "chatmail-iroh", targets: ["chatmail-iroh"]),
        .executable(name: "chatmail-shadowsocks", targets: ["chatmail-shadowsocks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // System libraries and the small C shim.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "CChatmailShims"),

        // Shared libraries.
        .target(name: "ChatmailCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "ChatmailConfig", dependencies: ["TOMLKit"], swiftSettings: strict),
        // Prometheus samples and their text format: pure, shared by the supervisor and the children.
        .target(name: "ChatmailMetrics", swiftSettings: strict),
        .target(
            name: "ChatmailControl",
            dependencies: [
                "ChatmailCrypto", "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .target(
            name: "ChatmailTLS",
            dependencies: ["COpenSSL", "ChatmailConfig", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        .target(
            name: "ChatmailSystemd",
            dependencies: ["CSystemd", "CChatmailShims", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "ChatmailSidecar",
            dependencies: [
                "CChatmailShims", "ChatmailConfig", "ChatmailSystemd", "ChatmailControl", "ChatmailTLS", "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(name: "ChatmailQR", swiftSettings: strict),
        .target(name: "ChatmailProxyProtocol", swiftSettings: strict),
        .target(
            name: "ChatmailState", dependencies: [.product(name: "GRDB", package: "GRDB.swift")], swiftSettings: strict),

        // imap sidecar
        .systemLibrary(
            name: "CZlib", path: "sidecars/imap/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "IMAPCore", path: "sidecars/imap/IMAPCore", swiftSettings: strict),
        // Push notifications: libcurl (Debian's, on the system OpenSSL) through a small C shim,
        // since curl_easy_setopt is variadic and cannot be called from Swift.
        .systemLibrary(
            name: "CCurl", path: "sidecars/imap/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CPushCurl", dependencies: ["CCurl"], path: "sidecars/imap/CPushCurl"),
        .target(
            name: "IMAPPush",
            dependencies: [
                "CPushCurl", "IMAPCore", "IMAPStore", "ChatmailMetrics",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/imap/IMAPPush", swiftSettings: strict),
        .target(
            name: "IMAPStore",
            dependencies: [
                "IMAPCore", "ChatmailCrypto", "ChatmailConfig", .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's incremental blob I/O, which GRDB does not wrap (message bodies read once).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "sidecars/imap/IMAPStore", swiftSettings: strict),
        .target(
            name: "IMAPServer",
            dependencies: [
                "IMAPCore", "IMAPStore", "ChatmailTLS", "ChatmailSidecar", "CZlib", "ChatmailProxyProtocol",
                "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/imap/IMAPServer", swiftSettings: strict),
        .executableTarget(
            name: "chatmail-imap",
            dependencies: [
                "IMAPServer", "IMAPStore", "IMAPCore", "IMAPPush", "ChatmailSidecar", "ChatmailConfig",
                "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/imap/chatmail-imap", swiftSettings: strict),
        .testTarget(name: "IMAPCoreTests", dependencies: ["ChatmailTestSupport", "IMAPCore"]),
        .testTarget(
            name: "IMAPPushTests",
            dependencies: [
                "IMAPPush", "IMAPStore", "IMAPCore", "ChatmailMetrics", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "IMAPStoreTests",
            dependencies: ["IMAPStore", "IMAPCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "IMAPServerTests",
            dependencies: [
                "IMAPServer", "IMAPCore", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The supervisor: a pure core, the runtime around it, and the executable.
        .target(name: "ChatmailSupervisorCore", swiftSettings: strict),
        .target(
            name: "ChatmailSupervisor",
            dependencies: [
                "ChatmailSupervisorCore", "ChatmailConfig", "ChatmailControl", "ChatmailSystemd", "ChatmailCrypto",
                "ChatmailTLS", "CChatmailShims", "ShadowsocksCore", "ChatmailMetrics", "ChatmailState",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "chatmail-supervisor",
            dependencies: [
                "ChatmailSupervisor", "ChatmailConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "chatmailctl",
            dependencies: [
                "ChatmailConfig", "ChatmailControl", "ChatmailCrypto", "ChatmailQR", "ChatmailState", "IMAPStore",
                "ShadowsocksCore", "ShadowsocksServer", "ChatmailDoctor",
                // check-config builds every child's settings with the children's own code.
                "ChatmailTLS", "TURNServer", "IMAPServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        // chatmailctl doctor: each service probed as a client from outside would, with the sidecars' cores.
        .target(
            name: "ChatmailDoctor",
            dependencies: [
                "COpenSSL", "ChatmailCrypto", "TURNCore", "IrohCore", "ShadowsocksCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ChatmailDoctorTests",
            dependencies: [
                // A real TURN server in-process for the credential checks.
                // FrontCore: the autoconfig file the front serves, for the front checks.
                "ChatmailDoctor", "TURNCore", "TURNServer", "ChatmailConfig", "ChatmailControl", "FrontCore",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),

        // iroh sidecar
        .target(
            name: "IrohCore", dependencies: ["ChatmailCrypto", .product(name: "NIOCore", package: "swift-nio")],
            path: "sidecars/iroh/IrohCore", swiftSettings: strict),
        .target(name: "FrontCore", path: "sidecars/iroh/FrontCore", swiftSettings: strict),
        .target(
            name: "IrohServer",
            dependencies: [
                "IrohCore", "FrontCore", "ChatmailProxyProtocol", "ChatmailConfig", "ChatmailTLS", "ChatmailSidecar",
                "IMAPCore", "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/iroh/IrohServer", swiftSettings: strict),
        .executableTarget(
            name: "chatmail-iroh",
            dependencies: [
                "IrohServer", "ChatmailSidecar", "ChatmailMetrics", "FrontCore", "IMAPStore", "ChatmailConfig",
            ],
            path: "sidecars/iroh/chatmail-iroh", swiftSettings: strict),
        .testTarget(name: "IrohCoreTests", dependencies: ["ChatmailTestSupport", "IrohCore", "ChatmailCrypto"]),
        .testTarget(name: "FrontCoreTests", dependencies: ["FrontCore", "IMAPCore"]),
        .testTarget(name: "ChatmailProxyProtocolTests", dependencies: ["ChatmailProxyProtocol"]),
        .testTarget(
            name: "IrohServerTests",
            dependencies: [
                "IrohServer", "IrohCore", "ChatmailConfig", "ChatmailCrypto",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),

        // A TLS server over OpenSSLHandler for the integration tests (not installed).
        .executableTarget(
            name: "chatmail-tls-testserver",
            dependencies: [
                "CChatmailShims", "ChatmailTLS", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/TLSTestServer"),
        .testTarget(
            name: "ChatmailTLSTests",
            dependencies: ["ChatmailTLS", .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "ChatmailSupervisorCoreTests", dependencies: ["ChatmailSupervisorCore"]),
        .testTarget(
            name: "ChatmailSystemdTests",
            dependencies: ["ChatmailSystemd", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ChatmailConfigTests", dependencies: ["ChatmailConfig"]),
        .testTarget(name: "ChatmailMetricsTests", dependencies: ["ChatmailMetrics"]),
        .testTarget(name: "ChatmailCryptoTests", dependencies: ["ChatmailTestSupport", "ChatmailCrypto"]),
        .testTarget(
            name: "ChatmailSidecarTests",
            dependencies: [
                "ChatmailSidecar", "ChatmailControl", "ChatmailConfig", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .target(name: "ChatmailTestSupport", path: "Tests/ChatmailTestSupport"),
        .testTarget(name: "ChatmailQRTests", dependencies: ["ChatmailTestSupport", "ChatmailQR"]),
        .testTarget(
            name: "ChatmailControlTests",
            dependencies: [
                "ChatmailTestSupport",
                "ChatmailControl", "ChatmailCrypto", "ChatmailMetrics",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
        .testTarget(
            name: "ChatmailSupervisorTests",
            dependencies: [
                "ChatmailSupervisor", "ChatmailControl", "ChatmailSystemd", "ChatmailConfig", "ChatmailState",
                "ShadowsocksCore", "ChatmailMetrics", .product(name: "Logging", package: "swift-log"),
            ]),
        // turn sidecar
        .target(
            name: "TURNCore", dependencies: ["ChatmailCrypto"], path: "sidecars/turn/TURNCore", swiftSettings: strict),
        .target(name: "CDatagramIO", path: "sidecars/turn/CDatagramIO"),
        .target(
            name: "TURNServer",
            dependencies: [
                "ChatmailMetrics", "TURNCore", "CDatagramIO", "ChatmailConfig", "ChatmailTLS", "ChatmailSidecar",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/turn/TURNServer", swiftSettings: strict),
        .executableTarget(
            name: "chatmail-turn",
            dependencies: [
                "TURNServer", "ChatmailSidecar", "ChatmailConfig", "ChatmailControl", "ChatmailTLS", "ChatmailMetrics",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "sidecars/turn/chatmail-turn", swiftSettings: strict),
        .testTarget(name: "TURNCoreTests", dependencies: ["ChatmailTestSupport", "TURNCore", "ChatmailControl"]),
        .testTarget(
            name: "TURNServerTests",
            dependencies: ["TURNServer", "TURNCore", "ChatmailConfig", "ChatmailTLS"]),

        // shadowsocks sidecar
        .target(
            name: "ShadowsocksCore",
            dependencies: ["ChatmailCrypto", .product(name: "NIOCore", package: "swift-nio")],
            path: "sidecars/shadowsocks/ShadowsocksCore", swiftSettings: strict),
        .target(
            name: "ShadowsocksServer",
            dependencies: [
                "ChatmailMetrics", "ShadowsocksCore", "ChatmailCrypto", "ChatmailConfig", "ChatmailSidecar",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "sidecars/shadowsocks/ShadowsocksServer", swiftSettings: strict),
        .executableTarget(
            name: "chatmail-shadowsocks",
            dependencies: [
                "ShadowsocksServer", "ShadowsocksCore", "ChatmailSidecar", "ChatmailControl", "ChatmailState",
                "ChatmailMetrics",
            ],
            path: "sidecars/shadowsocks/chatmail-shadowsocks", swiftSettings: strict),
        .testTarget(
            name: "ShadowsocksServerTests",
            dependencies: [
                "ShadowsocksServer", "ShadowsocksCore", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ShadowsocksCoreTests", dependencies: ["ChatmailTestSupport", "ShadowsocksCore", "ChatmailCrypto"],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
