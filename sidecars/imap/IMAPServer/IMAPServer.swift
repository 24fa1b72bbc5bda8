import ChatmailSidecar
import IMAPCore
import NIOCore
import NIOPosix

/// Binds the IMAP and LMTP listeners (each one listener, its connections spread over `group`), with the
/// guards of `Listeners.bind`.
public enum IMAPServer {
    /// Above `high` unsent bytes a connection stops running commands until it is below `low`.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 65536, high: 262_144)

    /// The thread pools: commands of logged-in sessions, commands before login (password
    /// hashes), LMTP deliveries. Apart, so that a slow command cannot hold up logins or mail.
    public struct ThreadPools: Sendable {
        public let commands: NIOThreadPool
        public let logins: NIOThreadPool
        public let lmtp: NIOThreadPool

        /// Started pools, `commands` sized to the cores.
        public static func start(cores: Int = System.coreCount) -> ThreadPools {
            let pools = ThreadPools(
                commands: NIOThreadPool(numberOfThreads: max(2, cores)),
                logins: NIOThreadPool(numberOfThreads: max(2, cores / 2)),
                lmtp: NIOThreadPool(numberOfThreads: 2))
            pools.commands.start()
            pools.logins.start()
            pools.lmtp.start()
            return pools
        }

        public func shutdown() async throws {
            for pool in [commands, logins, lmtp] { try await pool.shutdownGracefully() }
        }
    }

    /// An IMAP listener; `implicitTLS` for the TLS port (993), else the plain port with STARTTLS. With
    /// `proxyProtocol` every connection starts with a PROXY v2 header naming the client (from the HTTPS front).
    public static func bindIMAP(
        host: String, port: Int, implicitTLS: Bool, proxyProtocol: Bool = false, services: IMAPServices,
        group: any EventLoopGroup, limit: SourceConnectionLimit = .unlimited
    ) async throws -> any Channel {
        try await Listeners.bind(
            .tcp(host: host, port: port), loops: [group.next()], childGroup: group, limit: limit,
            childOptions: {
                $0.childChannelOption(.socketOption(.so_keepalive), value: 1)
                    .childChannelOption(.writeBufferWaterMark, value: writeBufferWaterMark)
            }
        ) { channel, _ in
            @Sendable func serve(_ channel: any Channel, peer: SocketAddress?) throws {
                if implicitTLS {
                    guard let tls = services.tls else { throw IMAPServerError.noTLS }
                    try channel.pipeline.syncOperations.addHandler(try tls.makeHandler())
                }
                try channel.pipeline.syncOperations.addHandler(
                    IMAPConnectionHandler(services: services, implicitTLS: implicitTLS, peer: peer))
            }
            if proxyProtocol {
                try channel.pipeline.syncOperations.addHandler(
                    ProxyHeaderHandler(timeout: services.settings.handshakeTimeout) { try serve($0, peer: $1) })
            } else {
                try serve(channel, peer: nil)
            }
        }[0]
    }

    /// An LMTP listener on a Unix socket (replacing a stale one) or, with `host`, on TCP.
    public static func bindLMTP(
        unixPath: String? = nil, host: String? = nil, port: Int = 0, settings: LMTPSession.Settings,
        backend: any LMTPBackend, threadPool: NIOThreadPool? = nil, sendTimeout: TimeAmount = .seconds(120),
        group: any EventLoopGroup, limit: SourceConnectionLimit = .unlimited
    ) async throws -> any Channel {
        let target: ListenTarget = unixPath.map { .unix(path: $0) } ?? .tcp(host: host ?? "127.0.0.1", port: port)
        return try await Listeners.bind(
            target, loops: [group.next()], childGroup: group, limit: limit, backlog: 256,
            childOptions: { $0.childChannelOption(.writeBufferWaterMark, value: writeBufferWaterMark) }
        ) { channel, _ in
            try channel.pipeline.syncOperations.addHandler(
                LMTPConnectionHandler(
                    settings: settings, backend: backend, threadPool: threadPool, sendTimeout: sendTimeout))
        }[0]
    }
}

public enum IMAPServerError: Error, CustomStringConvertible {
    case noTLS

    public var description: String {
        switch self {
        case .noTLS: "the TLS port needs a certificate ([tls])"
        }
    }
}

extension IMAPServer {
    /// The Dovecot auth socket for the MTA's SASL (replacing a stale socket file).
    public static func bindAuth(unixPath: String, service: DovecotAuthService, group: any EventLoopGroup)
        async throws -> any Channel
    {
        // A Unix socket: no source address to cap, but the accept backoff of every listener.
        try await Listeners.bind(
            .unix(path: unixPath), loops: [group.next()], childGroup: group, limit: .unlimited, backlog: 256
        ) { channel, _ in
            try channel.pipeline.syncOperations.addHandler(DovecotAuthHandler(service: service))
        }[0]
    }
}
