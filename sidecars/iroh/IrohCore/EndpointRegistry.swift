/// Which connection receives packets for which key, within one protocol family (the families never mix).
///
/// A pure value type: the server applies the returned actions. `Connection` identifies a connection.
public struct EndpointRegistry<Connection: Hashable & Sendable>: Sendable {
    /// What a second connection with an already connected key does.
    public enum DuplicatePolicy: Sendable {
        /// iroh 0.35, whose handshake proves nothing (ClientInfo signs a constant, so a captured one replays): the
        /// new connection waits inactive (it may send, it receives nothing) and the active one is checked
        /// (`probe`). Only when that one ends, as a real client's old connection does after a reconnect (closed,
        /// or dead and failing the check), is the newest waiting one promoted.
        case keepActive
        /// iroh 1.x, where every connection proved its key by the challenge: the new connection becomes active;
        /// the old one stays open (it may still send) and is told. When the active one ends, the most recent
        /// inactive one is promoted.
        case keepInactive
    }

    public enum Action: Equatable, Sendable {
        /// Check at once that this (active) connection is alive, and close it if it is not: another one with its
        /// key is waiting.
        case probe(Connection)
        /// Tell this connection another one with its key took over (Status / Health).
        case demoted(Connection)
        /// Tell this connection it receives packets again (Status healthy).
        case promoted(Connection)
        /// Tell `connection` that `key` went away (EndpointGone / PeerGone).
        case gone(EndpointKey, to: Connection)
    }

    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline
        var active: Connection
        @usableFromInline
        var inactive: [Connection] = []
    }

    /// At most this many recorded destinations per source, for the gone notices; more are not recorded.
    public static var maxRecordedDestinations: Int { 512 }

    public let policy: DuplicatePolicy
    @usableFromInline
    var entries: [EndpointKey: Entry] = [:]
    @usableFromInline
    var sentTo: [EndpointKey: Set<EndpointKey>] = [:]

    public init(policy: DuplicatePolicy) {
        self.policy = policy
    }

    /// The number of keys with a connection.
    public var count: Int { entries.count }

    /// The connection that receives packets for `key`.
    @inlinable
    public func destination(for key: EndpointKey) -> Connection? {
        entries[key]?.active
    }

    /// Registers an authenticated connection.
    public mutating func register(_ key: EndpointKey, _ connection: Connection) -> [Action] {
        guard var entry = entries[key] else {
            entries[key] = Entry(active: connection)
            return []
        }
        let previous = entry.active
        switch policy {
        case .keepActive:
            entry.inactive.append(connection)
            entries[key] = entry
            return [.probe(previous)]
        case .keepInactive:
            entry.active = connection
            entry.inactive.append(previous)
            entries[key] = entry
            return [.demoted(previous)]
        }
    }

    /// Removes a connection that ended.
    public mutating func unregister(_ key: EndpointKey, _ connection: Connection) -> [Action] {
        guard var entry = entries[key] else { return [] }
        if entry.active != connection {
            entry.inactive.removeAll { $0 == connection }
            entries[key] = entry
            return []
        }
        if let next = entry.inactive.popLast() {
            entry.active = next
            entries[key] = entry
            return [.promoted(next)]
        }
        entries[key] = nil
        let destinations = sentTo.removeValue(forKey: key) ?? []
        return destinations.compactMap { destination in entries[destination].map { .gone(key, to: $0.active) } }
    }

    /// Records that `source` sent to `destination`, so that `destination` hears when `source` goes.
    @inlinable
    public mutating func recordSent(from source: EndpointKey, to destination: EndpointKey) {
        if sentTo[source]?.contains(destination) == true { return }
        guard (sentTo[source]?.count ?? 0) < Self.maxRecordedDestinations else { return }
        sentTo[source, default: []].insert(destination)
    }
}
