/// The transport between a client and the server.
public enum TURNTransport: UInt8, Hashable, Sendable {
    case udp, tcp, tls
}

/// The 5-tuple that identifies an allocation (RFC 8656 §2): client address, server address and transport.
public struct FiveTuple: Hashable, Sendable, CustomStringConvertible {
    public var client: STUNAddress
    public var server: STUNAddress
    public var transport: TURNTransport

    public init(client: STUNAddress, server: STUNAddress, transport: TURNTransport) {
        self.client = client
        self.server = server
        self.transport = transport
    }

    public var description: String { "\(transport) \(client)→\(server)" }
}

/// Lifetimes and per-allocation bounds (RFC 8656 §3.2, §9, §12).
public struct AllocationLimits: Hashable, Sendable {
    /// Granted when the client asks for less or nothing (seconds).
    public var defaultLifetime: Int64 = 600
    /// The most granted.
    public var maximumLifetime: Int64 = 3600
    public var permissionLifetime: Int64 = 300
    public var channelLifetime: Int64 = 600
    /// How long an expired channel's number and peer stay reserved (RFC 8656 §12).
    public var channelQuarantine: Int64 = 300
    public var maximumPermissions = 32
    public var maximumChannels = 32
    /// Relayed bytes per second per allocation and direction; 0 for no cap.
    public var bandwidthBytesPerSecond = 0

    public init() {}

    /// The lifetime to grant for a requested one (nil when absent); 0 stays 0 (a Refresh that deletes).
    public func lifetime(requested: UInt32?) -> Int64 {
        guard let requested else { return defaultLifetime }
        if requested == 0 { return 0 }
        return min(max(Int64(requested), defaultLifetime), maximumLifetime)
    }
}

/// A host (IPv4 or IPv6, no port) packed for quick comparison.
public struct PeerHost: Hashable, Sendable {
    let high: UInt64
    let low: UInt64
    let isIPv6: Bool

    public init(_ address: STUNAddress) {
        if let v6 = address.ipv6 {
            (high, low, isIPv6) = (v6.high, v6.low, true)
        } else {
            (high, low, isIPv6) = (0, UInt64(address.ipv4!), false)
        }
    }
}

/// Names a relayed socket of the I/O layer (an index into its table), opaque here. A plain number keeps the core
/// free of generics, so its per-packet paths compile to concrete code in every build configuration.
public struct RelayID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "relay#\(rawValue)" }
}

/// One allocation's state: its owner, lifetime, permissions and channels. Time is injected (seconds on a
/// monotonic clock); nothing here expires by itself: lookups compare expiries and `sweep` drops the dead.
public struct Allocation: Sendable {
    public struct Permission: Sendable {
        public var host: PeerHost
        public var expiry: Int64
        /// The peer policy admits this host only as the relayed address of one of our allocations: data to and
        /// from it flows only while such an allocation lives (its port is anyone's once it is gone).
        public var onlyAsOurRelay = false
    }

    public struct Channel: Sendable {
        public var number: UInt16
        public var peer: STUNAddress
        public var expiry: Int64
        /// The peer is reachable only as the relayed address of one of our allocations (see `Permission`).
        public var onlyAsOurRelay = false
    }

    public enum ChannelBindFailure: Error, Hashable, Sendable {
        /// The number is bound (or quarantined) to another peer, or the peer to another number.
        case conflict
        /// The allocation already has `maximumChannels` channels.
        case quota
    }

    public let fiveTuple: FiveTuple
    public let username: String
    /// The long-term key the Allocate was authenticated with; later requests must use the same.
    public let key: [UInt8]
    /// One relayed address per family (two for a dual-stack allocation).
    public var relays: [(address: STUNAddress, relay: RelayID)]
    public var expiry: Int64
    public private(set) var permissions: [Permission] = []
    public private(set) var channels: [Channel] = []
    /// Indexed by `number - 0x4000` for the RFC 8656 numbers (below 0x5000): the index into `channels`, or -1.
    /// Makes the ChannelData lookup O(1); the old RFC 5766 numbers above are found by a scan.
    private var channelIndex: [Int16]
    let limits: AllocationLimits
    /// Bandwidth accounting: the current one-second window and what was relayed in it, per direction.
    private var window: Int64 = 0
    private var bytesOut = 0
    private var bytesIn = 0

    public init(
        fiveTuple: FiveTuple, username: String, key: [UInt8], relays: [(address: STUNAddress, relay: RelayID)],
        lifetime: Int64, now: Int64, limits: AllocationLimits
    ) {
        self.fiveTuple = fiveTuple
        self.username = username
        self.key = key
        self.relays = relays
        self.expiry = now + lifetime
        self.limits = limits
        self.channelIndex = []
    }

    public func isExpired(now: Int64) -> Bool { now >= expiry }

    /// The relay of the family of `peer`, if the allocation has one.
    @inline(__always)
    public func relay(for peer: STUNAddress) -> (address: STUNAddress, relay: RelayID)? {
        // Index loops: the per-packet paths must not allocate, and iterators and closures over generic collections
        // do in unoptimised builds.
        var index = 0
        while index < relays.count {
            if relays[index].address.family == peer.family { return relays[index] }
            index += 1
        }
        return nil
    }

    // MARK: Permissions

    @inline(__always)
    public func hasPermission(_ peer: STUNAddress, now: Int64) -> Bool {
        permission(for: peer, now: now) != nil
    }

    /// The live permission for `peer`'s host.
    @inline(__always)
    public func permission(for peer: STUNAddress, now: Int64) -> Permission? {
        let host = PeerHost(peer)
        var index = 0
        while index < permissions.count {
            if permissions[index].host == host { return permissions[index].expiry > now ? permissions[index] : nil }
            index += 1
        }
        return nil
    }

    /// Whether `peers` can all be installed or refreshed without exceeding the permission bound.
    public func canInstallPermissions(_ peers: [STUNAddress], now: Int64) -> Bool {
        var hosts: [PeerHost] = []
        for peer in peers {
            let host = PeerHost(peer)
            if !permissions.contains(where: { $0.host == host && $0.expiry > now }) && !hosts.contains(host) {
                hosts.append(host)
            }
        }
        let live = permissions.count { $0.expiry > now }
        return live + hosts.count <= limits.maximumPermissions
    }

    /// Installs or refreshes the permission for `peer`'s host. Check `canInstallPermissions` first.
    public mutating func installPermission(_ peer: STUNAddress, now: Int64, onlyAsOurRelay: Bool = false) {
        let host = PeerHost(peer)
        let expiry = now + limits.permissionLifetime
        if let index = permissions.firstIndex(where: { $0.host == host }) {
            permissions[index].expiry = expiry
            permissions[index].onlyAsOurRelay = onlyAsOurRelay
        } else {
            if let dead = permissions.firstIndex(where: { $0.expiry <= now }) { permissions.remove(at: dead) }
            permissions.append(Permission(host: host, expiry: expiry, onlyAsOurRelay: onlyAsOurRelay))
        }
    }

    // MARK: Channels

    /// Binds or refreshes `number` to `peer` (and installs the permission, RFC 8656 §12.2).
    public mutating func bindChannel(
        _ number: UInt16, to peer: STUNAddress, now: Int64, onlyAsOurRelay: Bool = false
    ) throws(ChannelBindFailure) {
        let quarantine = limits.channelQuarantine
        func reserved(_ channel: Channel) -> Bool { channel.expiry + quarantine > now }
        if let existing = channels.firstIndex(where: { $0.number == number && reserved($0) }) {
            guard channels[existing].peer == peer else { throw .conflict }
            channels[existing].expiry = now + limits.channelLifetime
            channels[existing].onlyAsOurRelay = onlyAsOurRelay
        } else {
            guard !channels.contains(where: { $0.peer == peer && reserved($0) }) else { throw .conflict }
            guard canInstallPermissions([peer], now: now) else { throw .quota }
            channels.removeAll { !reserved($0) }
            guard channels.count < limits.maximumChannels else { throw .quota }
            channels.append(
                Channel(
                    number: number, peer: peer, expiry: now + limits.channelLifetime, onlyAsOurRelay: onlyAsOurRelay))
            rebuildChannelIndex()
        }
        installPermission(peer, now: now, onlyAsOurRelay: onlyAsOurRelay)
    }

    /// The peer of a live channel.
    @inline(__always)
    public func peer(onChannel number: UInt16, now: Int64) -> STUNAddress? {
        channel(number, now: now)?.peer
    }

    /// The live channel `number`: the ChannelData fast path (an array index and a comparison).
    @inline(__always)
    public func channel(_ number: UInt16, now: Int64) -> Channel? {
        let slot = Int(number) &- 0x4000
        let channel: Channel
        if slot >= 0, slot < channelIndex.count {
            let index = Int(channelIndex[slot])
            guard index >= 0 else { return nil }
            channel = channels[index]
        } else if number >= 0x5000, let found = channels.first(where: { $0.number == number }) {
            channel = found
        } else {
            return nil
        }
        return channel.expiry > now ? channel : nil
    }

    /// The live channel bound to `peer`, for sending its data to the client as ChannelData.
    @inline(__always)
    public func channel(for peer: STUNAddress, now: Int64) -> UInt16? {
        var index = 0
        while index < channels.count {
            if channels[index].peer == peer { return channels[index].expiry > now ? channels[index].number : nil }
            index += 1
        }
        return nil
    }

    private mutating func rebuildChannelIndex() {
        let indexed = channels.filter { $0.number < 0x5000 }
        let highest = indexed.map { Int($0.number) - 0x4000 }.max() ?? -1
        channelIndex = [Int16](repeating: -1, count: highest + 1)
        for (index, channel) in channels.enumerated() where channel.number < 0x5000 {
            channelIndex[Int(channel.number) - 0x4000] = Int16(index)
        }
    }

    // MARK: Bandwidth

    /// Accounts `bytes` relayed from the client (`outbound`) or to it; false when the cap for this second is used
    /// up and the packet should be dropped.
    public mutating func admit(bytes: Int, outbound: Bool, now: Int64) -> Bool {
        let cap = limits.bandwidthBytesPerSecond
        guard cap > 0 else { return true }
        if now != window {
            window = now
            bytesOut = 0
            bytesIn = 0
        }
        if outbound {
            guard bytesOut + bytes <= cap else { return false }
            bytesOut += bytes
        } else {
            guard bytesIn + bytes <= cap else { return false }
            bytesIn += bytes
        }
        return true
    }

    /// Drops expired permissions and channels past their quarantine.
    public mutating func sweep(now: Int64) {
        permissions.removeAll { $0.expiry <= now }
        let before = channels.count
        channels.removeAll { $0.expiry + limits.channelQuarantine <= now }
        if channels.count != before { rebuildChannelIndex() }
    }
}
