import Logging
import NIOCore
import ShadowsocksCore
import Synchronization

/// Everything a Shadowsocks server needs to run, independent of where it came from (configuration file,
/// state database, tests).
public struct ShadowsocksSettings: Sendable {
    public var credential: ShadowsocksCredential
    public var policy: DestinationPolicy
    /// From accept: a connection must complete its request by then; a failed one is read silently until then.
    public var handshakeTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    public var connectTimeout: TimeAmount
    public var maxHalfOpen: Int
    /// Half-open connections from one source address, at most (so one prober cannot fill `maxHalfOpen`).
    public var maxHalfOpenPerSource: Int
    public var maxConnections: Int
    public var replayHistory: Int

    public init(
        credential: ShadowsocksCredential, policy: DestinationPolicy, handshakeTimeout: TimeAmount = .seconds(60),
        idleTimeout: TimeAmount = .seconds(1800), connectTimeout: TimeAmount = .seconds(10), maxHalfOpen: Int = 1024,
        maxHalfOpenPerSource: Int = 32, maxConnections: Int = 8192, replayHistory: Int = 100_000
    ) {
        self.credential = credential
        self.policy = policy
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.maxHalfOpen = maxHalfOpen
        self.maxHalfOpenPerSource = maxHalfOpenPerSource
        self.maxConnections = maxConnections
        self.replayHistory = replayHistory
    }
}

/// Counters of what happened, by outcome (no addresses, no secrets).
public struct ShadowsocksCounters: Sendable, Equatable, CustomStringConvertible {
    public var accepted = 0
    /// Requests that did not authenticate or parse (probes, wrong keys).
    public var failedHandshakes = 0
    public var replays = 0
    public var refusedPort = 0
    public var refusedHost = 0
    /// Connections closed at once because a cap was reached.
    public var overCapacity = 0
    public var upstreamFailures = 0
    public var bytesFromClients = 0
    public var bytesToClients = 0

    public var description: String {
        "accepted=\(accepted) failed_handshakes=\(failedHandshakes) replays=\(replays) refused_port=\(refusedPort) "
            + "refused_host=\(refusedHost) over_capacity=\(overCapacity) upstream_failures=\(upstreamFailures) "
            + "bytes_from_clients=\(bytesFromClients) bytes_to_clients=\(bytesToClients)"
    }
}

/// State shared by all connections of one server, across event loops.
final class ServerState: Sendable {
    let settings: ShadowsocksSettings
    let logger: Logger
    /// The upstreams as socket addresses, resolved once at start (connecting by name would resolve per
    /// connection).
    let upstreamAddresses: [DestinationPolicy.Upstream: SocketAddress]
    private struct Shared {
        var history: SaltHistory
        var connections = 0
        var halfOpen = 0
        var halfOpenBySource: [[UInt8]: Int] = [:]
        var counters = ShadowsocksCounters()
    }
    private let shared: Mutex<Shared>

    init(settings: ShadowsocksSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        var addresses: [DestinationPolicy.Upstream: SocketAddress] = [:]
        for upstream in settings.policy.upstreams.values {
            addresses[upstream] = try SocketAddress.makeAddressResolvingHost(upstream.host, port: Int(upstream.port))
        }
        upstreamAddresses = addresses
        shared = Mutex(Shared(history: SaltHistory(capacity: settings.replayHistory)))
    }

    var counters: ShadowsocksCounters { shared.withLock { $0.counters } }

    /// Admits a new connection from `source` (its address bytes) as half-open; false if a cap is reached.
    func admit(source: [UInt8]) -> Bool {
        shared.withLock { state in
            guard state.connections < settings.maxConnections, state.halfOpen < settings.maxHalfOpen,
                state.halfOpenBySource[source, default: 0] < settings.maxHalfOpenPerSource
            else {
                state.counters.overCapacity += 1
                return false
            }
            state.connections += 1
            state.halfOpen += 1
            state.halfOpenBySource[source, default: 0] += 1
            return true
        }
    }

    /// A half-open connection from `source` completed its handshake.
    func established(source: [UInt8]) {
        shared.withLock { state in
            state.halfOpen -= 1
            Self.release(source, in: &state)
        }
    }

    /// A connection from `source` closed (`halfOpen`: it never completed its handshake).
    func closed(source: [UInt8], halfOpen: Bool) {
        shared.withLock { state in
            state.connections -= 1
            if halfOpen {
                state.halfOpen -= 1
                Self.release(source, in: &state)
            }
        }
    }

    private static func release(_ source: [UInt8], in state: inout Shared) {
        let remaining = state.halfOpenBySource[source, default: 1] - 1
        state.halfOpenBySource[source] = remaining > 0 ? remaining : nil
    }

    /// Records an authenticated request's salt (and for SIP004 our response salt); false for a replay.
    func remember(requestSalt: [UInt8], responseSalt: [UInt8]?) -> Bool {
        shared.withLock { state in
            guard !state.history.contains(requestSalt) else {
                state.counters.replays += 1
                return false
            }
            state.history.insert(requestSalt)
            if let responseSalt { state.history.insert(responseSalt) }
            return true
        }
    }

    func count(_ update: (inout ShadowsocksCounters) -> Void) { shared.withLock { update(&$0.counters) } }
}
