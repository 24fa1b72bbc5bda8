import ChatmailConfig
import FrontCore
import IrohCore
import Logging
import NIOCore

/// Counters the relay keeps, served as JSON on `/healthz`.
public struct RelayCounters: Codable, Sendable, Equatable {
    /// TCP connections open now.
    public var connections = 0
    /// Authenticated relay sessions open now, per family.
    public var legacySessions = 0
    public var relaySessions = 0
    /// Packets (frames carrying datagrams) forwarded, per family, and their payload bytes.
    public var legacyPacketsForwarded = 0
    public var relayPacketsForwarded = 0
    public var bytesForwarded = 0
    /// Packets dropped: no such destination, or its queue was full.
    public var packetsDroppedNoDestination = 0
    public var packetsDroppedQueueFull = 0
    /// Connections refused or closed for a protocol error or a failed handshake.
    public var protocolErrors = 0
    /// Connections closed by a limit: too many connections, handshake deadline, write timeout, ping timeout.
    public var limitClosures = 0
    /// Connections with a key already connected: waiting while the active one is checked (family L), or
    /// demoting it (family W).
    public var duplicateKeys = 0
    /// Connections slowed down by the rate limit (counted once each).
    public var rateLimited = 0
    /// The HTTPS front's connections by where they went: passed to IMAP or SMTP, served here, or closed (a
    /// malformed ClientHello, a route without an upstream, an upstream that cannot be reached).
    public var frontToIMAP = 0
    public var frontToSMTP = 0
    public var frontServedHere = 0
    public var frontRefused = 0
    /// `POST /new` answers: credentials given, refused by the per-source rate, refused while creation is closed.
    public var newAccountsGiven = 0
    public var newAccountsRateLimited = 0
    public var newAccountsCreationClosed = 0

    public init() {}
}

/// What all relay connections share: one registry per family and the counters. Confined to one event loop (all
/// relay connections live on it), so forwarding is a direct call with no locks or hops.
final class RelayHub: @unchecked Sendable {
    let eventLoop: any EventLoop
    let limits: IrohLimits
    let logger: Logger
    private(set) var counters = RelayCounters()
    private var legacy = EndpointRegistry<ConnectionReference>(policy: .keepActive)
    private var relay = EndpointRegistry<ConnectionReference>(policy: .keepInactive)
    /// Connections written to during the current read burst, flushed together at its end.
    private var unflushed: [RelayConnectionHandler] = []
    private var open: [ObjectIdentifier: any Channel] = [:]

    init(eventLoop: any EventLoop, limits: IrohLimits, logger: Logger) {
        self.eventLoop = eventLoop
        self.limits = limits
        self.logger = logger
    }

    /// Counts a new TCP connection; false when the limit is reached (the caller closes it).
    func admit() -> Bool {
        eventLoop.preconditionInEventLoop()
        guard counters.connections < limits.maxConnections else {
            counters.limitClosures += 1
            return false
        }
        counters.connections += 1
        return true
    }

    /// Counts the connection until it closes, and keeps it for `closeAll`.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        open[id] = channel
        channel.closeFuture.whenComplete { [self] _ in
            eventLoop.execute {
                self.open[id] = nil
                self.counters.connections -= 1
            }
        }
    }

    /// Closes every open connection (at shutdown).
    func closeAll() {
        for channel in open.values { channel.close(promise: nil) }
    }
    func countProtocolError() { counters.protocolErrors += 1 }
    func countLimitClosure() { counters.limitClosures += 1 }
    func countRateLimited() { counters.rateLimited += 1 }

    /// A front connection went to `route`, or (nil) was closed.
    func countFront(_ route: FrontRoute?) {
        switch route {
        case .imap: counters.frontToIMAP += 1
        case .smtp: counters.frontToSMTP += 1
        case .here: counters.frontServedHere += 1
        case nil: counters.frontRefused += 1
        }
    }

    /// A `POST /new` answered with `status` (200, 429 or 503).
    func countNewAccount(status: Int) {
        switch status {
        case 200: counters.newAccountsGiven += 1
        case 429: counters.newAccountsRateLimited += 1
        default: counters.newAccountsCreationClosed += 1
        }
    }

    func register(_ connection: RelayConnectionHandler, key: EndpointKey) {
        eventLoop.preconditionInEventLoop()
        let reference = ConnectionReference(connection)
        switch connection.family {
        case .legacy:
            counters.legacySessions += 1
            apply(legacy.register(key, reference))
        case .relay:
            counters.relaySessions += 1
            apply(relay.register(key, reference))
        }
    }

    func unregister(_ connection: RelayConnectionHandler, key: EndpointKey) {
        eventLoop.preconditionInEventLoop()
        let reference = ConnectionReference(connection)
        switch connection.family {
        case .legacy:
            counters.legacySessions -= 1
            apply(legacy.unregister(key, reference))
        case .relay:
            counters.relaySessions -= 1
            apply(relay.unregister(key, reference))
        }
    }

    /// Sends `payload` from `source` to the connection registered for `destination` in the same family: dropped
    /// silently when there is none, or when its queue is full.
    func forward(_ payload: RelayPayload, from source: EndpointKey, to destination: EndpointKey, family: RelayFamily) {
        let target: ConnectionReference?
        switch family {
        case .legacy: target = legacy.destination(for: destination)
        case .relay: target = relay.destination(for: destination)
        }
        guard let target else {
            counters.packetsDroppedNoDestination += 1
            return
        }
        guard target.connection.deliver(.packet(source: source, payload)) else {
            counters.packetsDroppedQueueFull += 1
            return
        }
        switch family {
        case .legacy:
            counters.legacyPacketsForwarded += 1
            legacy.recordSent(from: source, to: destination)
        case .relay:
            counters.relayPacketsForwarded += 1
            relay.recordSent(from: source, to: destination)
        }
        counters.bytesForwarded += payload.byteCount
    }

    /// Remembers that `connection` has unflushed writes.
    func needsFlush(_ connection: RelayConnectionHandler) {
        unflushed.append(connection)
    }

    /// Flushes every connection written to since the last call (at the end of a read burst).
    func flushAll() {
        while let connection = unflushed.popLast() {
            connection.flushIfNeeded()
        }
    }

    private func apply(_ actions: [EndpointRegistry<ConnectionReference>.Action]) {
        for action in actions {
            switch action {
            case .probe(let reference):
                counters.duplicateKeys += 1
                reference.connection.checkAlive()
            case .demoted(let reference):
                counters.duplicateKeys += 1
                _ = reference.connection.deliver(.status(.sameEndpointIdConnected))
            case .promoted(let reference):
                _ = reference.connection.deliver(.status(.healthy))
            case .gone(let key, let reference):
                _ = reference.connection.deliver(.gone(key))
            }
        }
        flushAll()
    }
}

/// A connection handler compared by identity, for the registries.
struct ConnectionReference: Hashable, @unchecked Sendable {
    let connection: RelayConnectionHandler

    init(_ connection: RelayConnectionHandler) { self.connection = connection }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.connection === rhs.connection }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(connection)) }
}
