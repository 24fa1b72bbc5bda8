import Foundation
import Logging
import NIOCore
import ShadowsocksCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

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
    /// Half-open connections from one source address, and from one /24 or /64, at most; both shrink with the
    /// share of `maxHalfOpen` still free (`HalfOpenBudget`), so a few sources cannot fill it.
    public var maxHalfOpenPerSource: Int
    public var maxHalfOpenPerNetwork: Int
    public var maxConnections: Int
    public var replayHistory: Int
    /// Where the salt history is kept across restarts (`SaltLog` format); nil: in memory only.
    public var saltFile: String?
    /// How often new salts are appended to `saltFile`: a crash loses at most the salts of this interval.
    public var saltSaveInterval: TimeAmount

    public init(
        credential: ShadowsocksCredential, policy: DestinationPolicy, handshakeTimeout: TimeAmount = .seconds(60),
        idleTimeout: TimeAmount = .seconds(1800), connectTimeout: TimeAmount = .seconds(10), maxHalfOpen: Int = 1024,
        maxHalfOpenPerSource: Int = 32, maxHalfOpenPerNetwork: Int = 128, maxConnections: Int = 8192,
        replayHistory: Int = 100_000,
        saltFile: String? = nil, saltSaveInterval: TimeAmount = .seconds(1)
    ) {
        self.credential = credential
        self.policy = policy
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.maxHalfOpen = maxHalfOpen
        self.maxHalfOpenPerSource = maxHalfOpenPerSource
        self.maxHalfOpenPerNetwork = maxHalfOpenPerNetwork
        self.maxConnections = maxConnections
        self.replayHistory = replayHistory
        self.saltFile = saltFile
        self.saltSaveInterval = saltSaveInterval
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
    /// SIP022 requests stamped before this Unix time are refused: set to just after the start time when the salt
    /// history of the previous run may be incomplete (it did not stop cleanly, or its file could not be read).
    let earliestTimestamp: UInt64
    private let saltFile: Mutex<SaltFileState>?
    private struct SaltFileState: ~Copyable {
        let file: SaltFile
        /// The last write failed or salts were dropped: the next save rewrites the file whole.
        var needsRewrite = false
        var failing = false
    }
    private struct Shared {
        var history: SaltHistory
        /// Salts accepted since the last save.
        var unsaved: [[UInt8]] = []
        /// More salts arrived between two saves than `unsaved` keeps.
        var unsavedOverflow = false
        /// The final save ran: no request is accepted any more.
        var stopped = false
        var connections = 0
        var halfOpen: HalfOpenBudget
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
        var history = SaltHistory(capacity: settings.replayHistory)
        var earliest: UInt64 = 0
        if let path = settings.saltFile {
            // Timestamps have whole seconds: a request stamped in the second of the start may have come before it.
            let now = UInt64(time(nil)) + 1
            let file = SaltFile(path: path, saltLength: settings.credential.method.saltLength)
            do {
                if let contents = try file.load() {
                    for salt in contents.salts { history.insert(salt) }
                    if !contents.cleanStop { earliest = now }
                }
            } catch {
                logger.warning("salt history: \(error)")
                earliest = now
            }
            if earliest != 0 {
                logger.notice(
                    "the last run did not stop cleanly: 2022 requests stamped before this start are refused (they may be replays)"
                )
            }
            var state = SaltFileState(file: file)
            // Standalone with a configured key, nothing else may have made the state directory yet.
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            do {
                try file.rewrite(history.salts, cleanStop: false)
            } catch {
                logger.warning("salt history: \(error); replays are refused only while this process runs")
                state.needsRewrite = true
                state.failing = true
            }
            saltFile = Mutex(state)
        } else {
            saltFile = nil
        }
        earliestTimestamp = earliest
        shared = Mutex(
            Shared(
                history: history,
                halfOpen: HalfOpenBudget(
                    total: settings.maxHalfOpen, perAddress: settings.maxHalfOpenPerSource,
                    perNetwork: settings.maxHalfOpenPerNetwork)))
    }

    /// Saves the salts accepted since the last save (appended, or the file rewritten whole once it has grown by
    /// `replayHistory` salts or after a failure). The final save (`stop`) marks the file complete, and after it no
    /// request is accepted. Blocking file I/O: run it off the event loops.
    func saveSalts(stop: Bool = false) {
        saltFile?.withLock { file in
            let capacity = settings.replayHistory
            let (batch, history, alreadyStopped) = shared.withLock { state in
                let batch = state.unsaved
                let wasStopped = state.stopped
                state.unsaved = []
                if state.unsavedOverflow { file.needsRewrite = true }
                state.unsavedOverflow = false
                if stop { state.stopped = true }
                let rewrite =
                    stop || file.needsRewrite || file.file.records + batch.count >= state.history.count + capacity
                return (batch, rewrite ? state.history : nil, wasStopped)
            }
            guard !alreadyStopped else { return }
            do {
                if let history {
                    try file.file.rewrite(history.salts, cleanStop: stop)
                } else {
                    try file.file.append(batch)
                }
                if file.failing { logger.notice("salt history saved again") }
                file.needsRewrite = false
                file.failing = false
            } catch {
                if !file.failing { logger.warning("salt history: \(error); retrying") }
                file.needsRewrite = true
                file.failing = true
            }
        }
    }

    var counters: ShadowsocksCounters { shared.withLock { $0.counters } }

    /// Admits a new connection from `source` as half-open; false if a cap is reached.
    func admit(source: IPAddress) -> Bool {
        shared.withLock { state in
            guard state.connections < settings.maxConnections, state.halfOpen.admit(source) else {
                state.counters.overCapacity += 1
                return false
            }
            state.connections += 1
            return true
        }
    }

    /// A half-open connection from `source` completed its handshake.
    func established(source: IPAddress) {
        shared.withLock { $0.halfOpen.release(source) }
    }

    /// A connection from `source` closed (`halfOpen`: it never completed its handshake).
    func closed(source: IPAddress, halfOpen: Bool) {
        shared.withLock { state in
            state.connections -= 1
            if halfOpen { state.halfOpen.release(source) }
        }
    }

    /// Records an authenticated request's salt (and for SIP004 our response salt); false for a replay.
    /// After the final save it refuses every request (its salt could not be saved any more).
    func remember(requestSalt: [UInt8], responseSalt: [UInt8]?) -> Bool {
        let saving = saltFile != nil
        return shared.withLock { state in
            guard !state.stopped else { return false }
            guard !state.history.contains(requestSalt) else {
                state.counters.replays += 1
                return false
            }
            state.history.insert(requestSalt)
            if let responseSalt { state.history.insert(responseSalt) }
            if saving {
                if state.unsaved.count < settings.replayHistory {
                    state.unsaved.append(requestSalt)
                    if let responseSalt { state.unsaved.append(responseSalt) }
                } else {
                    state.unsavedOverflow = true
                }
            }
            return true
        }
    }

    func count(_ update: (inout ShadowsocksCounters) -> Void) { shared.withLock { update(&$0.counters) } }
}
