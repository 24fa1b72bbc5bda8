import ChatmailConfig
import ChatmailSidecar
import ChatmailTLS
import Logging
import NIOCore
import NIOPosix
import TURNCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The STUN/TURN server: per event loop of `group` a UDP shard (its own thread with a UDP listener per address,
/// the relays of its clients and its own engine) and, on the loop, a TCP listener per address and a TLS listener
/// when a TLS provider is given, with the engine and relays of their clients. All listeners use SO_REUSEPORT, so
/// the kernel spreads clients; replies leave from the address the client sent to, since every listener is bound
/// to one address.
public final class TURNServer: Sendable {
    /// The bound listeners (their real ports when configured with port 0).
    public let udpAddresses: [SocketAddress]
    public let tcpAddresses: [SocketAddress]
    public let tlsAddresses: [SocketAddress]

    private let loops: [LoopState]
    private let shards: [UDPShard]
    private let listeners: [any Channel]
    private let timers: [RepeatedTask]
    private let reservations: RelayReservations
    private let shared: LockedTURNSharedState
    private let logger: Logger

    /// The number of live allocations on all loops.
    public var allocationCount: Int { shared.allocationCount }

    /// The counters of every loop's and shard's engine, added up (each read on its own thread).
    public func counters() async -> TURNCounters {
        var total = TURNCounters()
        for state in loops {
            total = total + ((try? await state.eventLoop.submit { state.engine.counters }.get()) ?? TURNCounters())
        }
        for shard in shards {
            total =
                total
                + (await withCheckedContinuation { continuation in
                    shard.execute { continuation.resume(returning: shard.engine.counters) }
                })
        }
        return total
    }

    /// Binds every listener and starts serving, with `settings` checked up front (`TURNSettings(configuration:)`).
    public static func start(
        settings: TURNSettings, secrets: [String], tls: TLSContextProvider?, group: any EventLoopGroup,
        logger: Logger, limit: SourceConnectionLimit = .unlimited
    ) async throws -> TURNServer {
        let turn = settings.section
        let relaySettings = settings.relay
        let listenHosts = try hosts(for: turn.listen.host)
        let tlsHosts = try hosts(for: turn.tlsListen.host)
        var own =
            listenHosts.compactMap { STUNAddress(host: $0, port: 0) }
            + tlsHosts.compactMap { STUNAddress(host: $0, port: 0) }
        for (bind, advertised) in relaySettings.relayBind.values { own += [bind, advertised] }
        let policy = PeerPolicy(
            allowed: settings.allowedPeers, denied: settings.deniedPeers, ownAddresses: own.filter { !$0.isWildcard },
            servicePorts: [turn.listen.port, turn.tlsListen.port])

        var settings = TURNEngineSettings(realm: turn.realm, software: turn.software.isEmpty ? nil : turn.software)
        settings.limits.maximumLifetime = Int64(turn.maxLifetime)
        settings.limits.maximumPermissions = turn.maxPermissions
        settings.limits.maximumChannels = turn.maxPermissions
        settings.limits.bandwidthBytesPerSecond = turn.bandwidthLimit * 125
        settings.relayFamilies = [STUNAddressFamily.ipv4, .ipv6].filter { relaySettings.relayBind[$0] != nil }
        let shared = LockedTURNSharedState(
            quotas: AllocationQuotas(
                perUsername: turn.maxAllocationsPerUser, perClientIP: turn.maxAllocationsPerAddress,
                total: turn.maxAllocations))
        let nonces = NonceAuthority.random()
        // No credential expires later than the supervisor mints them (a minute's grace for clock steps): one
        // minted with a leaked secret and a far expiry is refused.
        let authenticator = RESTAuthenticator(
            secrets: secrets, realm: turn.realm, maximumValidity: Int64(turn.credentialTTL) + 60)

        var loops: [LoopState] = []
        var shards: [UDPShard] = []
        let hairpin = HairpinRegistry()
        let reservations = RelayReservations()
        func makeEngine() -> TURNEngine {
            TURNEngine(settings: settings, authenticator: authenticator, policy: policy, nonces: nonces, shared: shared)
        }
        for loop in group.makeIterator() {
            loops.append(
                LoopState(
                    eventLoop: loop, engine: makeEngine(), relaySettings: relaySettings, reservations: reservations,
                    hairpin: hairpin, logger: logger))
            shards.append(
                try UDPShard(
                    name: "TURN-UDP-\(shards.count + 1)", engine: makeEngine(), relaySettings: relaySettings,
                    reservations: reservations, hairpin: hairpin, logger: logger))
        }

        // A stream client silent for longer than any allocation lives is gone.
        let deadlines = StreamDeadlines(
            firstMessage: .seconds(Int64(turn.handshakeTimeout)), unallocated: .seconds(Int64(turn.unallocatedTimeout)),
            unwritable: .seconds(Int64(turn.unallocatedTimeout)), idle: .seconds(Int64(turn.maxLifetime) + 60))
        var listeners: [any Channel] = []
        var udp: [SocketAddress] = []
        var tcp: [SocketAddress] = []
        var tlsBound: [SocketAddress] = []
        do {
            for host in listenHosts {
                var address = STUNAddress(host: host, port: turn.listen.port)!
                for shard in shards {
                    address = try shard.addListener(address)
                    if shard === shards[0] { udp.append(SocketAddress(address)) }
                }
                let first = try await bindStreams(
                    host: host, port: turn.listen.port, loops: loops, tls: nil, deadlines: deadlines, limit: limit,
                    into: &listeners)
                tcp.append(first.localAddress!)
            }
            if let tls {
                for host in tlsHosts {
                    let first = try await bindStreams(
                        host: host, port: turn.tlsListen.port, loops: loops, tls: tls, deadlines: deadlines,
                        limit: limit,
                        into: &listeners)
                    tlsBound.append(first.localAddress!)
                }
            }
            // With port 0 (tests) the real service ports are known only now.
            let servicePorts = Set((udp + tcp + tlsBound).compactMap { $0.port.map(UInt16.init) })
            for state in loops {
                try await state.eventLoop.submit { state.engine.policy.servicePorts.formUnion(servicePorts) }.get()
            }
            for shard in shards {
                shard.engine.policy.servicePorts.formUnion(servicePorts)
                try shard.start()
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            for shard in shards { shard.stop() }
            throw error
        }
        let sweeper = loops[0]
        let timers = loops.map { state in
            state.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                state.sweep()
                if state === sweeper { reservations.sweep(now: state.now) }
            }
        }
        logger.info(
            "TURN listening",
            metadata: [
                "udp": "\(udp)", "tcp": "\(tcp)", "tls": "\(tlsBound)", "loops": "\(loops.count)",
                "relay": "\(relaySettings.relayBind.values.map { "\($0.bind.host)→\($0.advertised.host)" })",
            ])
        return TURNServer(
            udp: udp, tcp: tcp, tls: tlsBound, loops: loops, shards: shards, listeners: listeners, timers: timers,
            reservations: reservations, shared: shared, logger: logger)
    }

    private init(
        udp: [SocketAddress], tcp: [SocketAddress], tls: [SocketAddress], loops: [LoopState], shards: [UDPShard],
        listeners: [any Channel], timers: [RepeatedTask], reservations: RelayReservations,
        shared: LockedTURNSharedState, logger: Logger
    ) {
        self.udpAddresses = udp
        self.tcpAddresses = tcp
        self.tlsAddresses = tls
        self.loops = loops
        self.shards = shards
        self.reservations = reservations
        self.listeners = listeners
        self.timers = timers
        self.shared = shared
        self.logger = logger
    }

    /// New secrets, current first (from the supervisor after a rotation): live allocations keep their keys.
    public func updateSecrets(_ secrets: [String]) {
        for state in loops {
            state.eventLoop.execute { state.engine.authenticator.secrets = secrets }
        }
        for shard in shards {
            shard.execute { shard.engine.authenticator.secrets = secrets }
        }
    }

    /// Closes the listeners, every client connection and every relayed socket.
    public func shutdown() async {
        for timer in timers { timer.cancel() }
        for listener in listeners { try? await listener.close() }
        for state in loops {
            try? await state.eventLoop.submit { state.shutdown() }.get()
        }
        // Each shard closes its allocations and listeners and ends its thread within milliseconds.
        for shard in shards { shard.stop() }
        reservations.sweep()
    }

    // MARK: Binding

    /// Binds a TCP (or, with `tls`, TLS) listener on one port on every loop, appending them to `listeners`;
    /// returns the first (with the real port when `port` is 0).
    private static func bindStreams(
        host: String, port: UInt16, loops: [LoopState], tls: TLSContextProvider?, deadlines: StreamDeadlines,
        limit: SourceConnectionLimit, into listeners: inout [any Channel]
    ) async throws -> any Channel {
        let transport: TURNTransport = tls == nil ? .tcp : .tls
        let bound = try await Listeners.bind(
            .tcp(host: host, port: Int(port)), loops: loops.map(\.eventLoop), limit: limit,
            childOptions: {
                $0.childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelOption(
                        ChannelOptions.writeBufferWaterMark,
                        value: ChannelOptions.Types.WriteBufferWaterMark(low: 64 << 10, high: 256 << 10))
            }
        ) { channel, listener in
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(IdleStateHandler(readTimeout: deadlines.idle))
            if let tls { try operations.addHandler(try tls.makeHandler()) }
            try operations.addHandler(BackPressureHandler())
            try operations.addHandler(ByteToMessageHandler(TURNFrameDecoder()))
            try operations.addHandler(
                StreamClientHandler(state: loops[listener], transport: transport, deadlines: deadlines))
        }
        listeners += bound
        return bound[0]
    }

    // MARK: Addresses

    /// The hosts to bind for a configured one (an IP address, as `TURNSettings` checked): itself, or every
    /// address of that family for a wildcard (so each listener answers from the address it was reached at).
    static func hosts(for host: String) throws -> [String] {
        guard let address = STUNAddress(host: host, port: 0), address.isWildcard else { return [host] }
        let devices = (try? System.enumerateDevices()) ?? []
        var hosts: [String] = []
        for device in devices {
            guard let bound = device.address.flatMap(STUNAddress.init), bound.family == address.family else { continue }
            // Link-local IPv6 needs a scope; clients of a relay do not use it.
            if let v6 = bound.ipv6, v6.high >> 54 == 0x3FA { continue }
            if !hosts.contains(bound.host) { hosts.append(bound.host) }
        }
        guard !hosts.isEmpty else { throw TURNServerError.configuration("[turn] listen: no local address for \(host)") }
        return hosts
    }
}
