import ChatmailConfig
import ChatmailSidecar
import ChatmailTLS
import IrohCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The iroh relay: HTTP and optionally HTTPS listeners serving `/relay` for both protocol families, `/ping`,
/// `/generate_204`, `/healthz` and `/`. The HTTPS listener is the relay's front (`FrontHandler`): connections
/// whose ClientHello asks for ALPN `imap` or `smtp` are passed to those services. All connections run on one event loop of `group`, where the hub lives.
public final class IrohRelayServer: Sendable {
    private let hub: RelayHub
    private let listeners: [any Channel]

    /// The bound plain-HTTP address (port resolved when 0 was asked for).
    public var httpAddress: SocketAddress? { listeners.first?.localAddress }
    /// The bound HTTPS address, when TLS is configured.
    public var httpsAddress: SocketAddress? { listeners.count > 1 ? listeners[1].localAddress : nil }

    private init(hub: RelayHub, listeners: [any Channel]) {
        self.hub = hub
        self.listeners = listeners
    }

    /// Binds `listen` (plain HTTP) and, when `tls` is given, `tlsListen` (HTTPS).
    public static func start(
        listen: ListenAddress, tlsListen: ListenAddress? = nil, tls: TLSContextProvider? = nil,
        front: FrontUpstreams = FrontUpstreams(imap: nil, smtp: nil), site: FrontSite? = nil, limits: IrohLimits,
        group: any EventLoopGroup,
        logger: Logger, limit: SourceConnectionLimit = .unlimited
    ) async throws -> IrohRelayServer {
        let eventLoop = group.next()
        let hub = RelayHub(eventLoop: eventLoop, limits: limits, logger: logger)
        let listeners = try await Listeners.bindAll(limit: limit) { listeners in
            try await bind(listen, tls: nil, front: front, site: nil, hub: hub, into: listeners)
            if let tlsListen, let tls {
                try await bind(tlsListen, tls: tls, front: front, site: site, hub: hub, into: listeners)
            }
            return listeners.channels
        }
        return IrohRelayServer(hub: hub, listeners: listeners)
    }

    /// The relay's counters, read on its event loop.
    public func counters() async throws -> RelayCounters {
        try await hub.eventLoop.submit { [hub] in hub.counters }.get()
    }

    /// Stops listening and closes the open connections.
    public func close() async {
        for channel in listeners { try? await channel.close() }
        try? await hub.eventLoop.submit { [hub] in hub.closeAll() }.get()
    }

    private static func bind(
        _ address: ListenAddress, tls: TLSContextProvider?, front: FrontUpstreams, site: FrontSite?,
        hub: RelayHub, into listeners: ListenerSet
    )
        async throws
    {
        try await listeners.bind(
            .tcp(host: address.host, port: Int(address.port)), loops: [hub.eventLoop],
            childOptions: {
                $0.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.socketOption(.so_keepalive), value: 1)
                    .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: 64 << 10))
            }
        ) { channel, _ in
            try configure(channel, tls: tls, front: front, site: site, hub: hub)
        }
    }

    private static func configure(
        _ channel: any Channel, tls: TLSContextProvider?, front: FrontUpstreams, site: FrontSite?, hub: RelayHub
    ) throws {
        guard hub.admit() else {
            hub.logger.warning("connection limit reached; refusing a connection")
            channel.close(promise: nil)
            return
        }
        hub.track(channel)
        let timeout = TimeAmount.nanoseconds(Int64(hub.limits.handshakeTimeout * 1e9))
        let deadline = HandshakeDeadlineHandler(timeout: timeout) { hub.countLimitClosure() }
        guard let tls else { return try serveHTTP(channel, tls: nil, site: nil, deadline: deadline, hub: hub) }
        // The HTTPS port is the front: the deadline first, so that it also bounds the wait for the ClientHello.
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(deadline)
        try pipeline.addHandler(
            FrontHandler(upstreams: front, linger: timeout, logger: hub.logger) { channel in
                try serveHTTP(channel, tls: tls, site: site, deadline: nil, hub: hub)
            })
    }

    /// Adds the handlers that serve HTTP(S) here at the end of the pipeline; `deadline` when not added yet.
    private static func serveHTTP(
        _ channel: any Channel, tls: TLSContextProvider?, site: FrontSite?, deadline: HandshakeDeadlineHandler?,
        hub: RelayHub
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        if hub.limits.rate > 0 {
            try pipeline.addHandler(RateLimitHandler(rate: hub.limits.rate, burst: hub.limits.burst))
        }
        if let tls { try pipeline.addHandler(try tls.makeHandler()) }
        // No reading while unsent answers (pongs, HTTP responses) are above the high watermark; a client that
        // never reads is dropped by the relay's write timeout, or before the handshake by its deadline.
        try pipeline.addHandler(BackPressureHandler())
        if let deadline { try pipeline.addHandler(deadline) }
        try pipeline.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [LegacyStreamUpgrader(hub: hub), hub.makeWebSocketUpgrader()],
                completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(name: HTTPRouter.name, promise: nil)
                }
            ))
        try pipeline.addHandler(HTTPRouter(hub: hub, site: site), name: HTTPRouter.name)
    }
}
