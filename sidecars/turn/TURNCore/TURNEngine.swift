import Synchronization

/// What the engine shares with the engines of other event loops: allocation quotas and the set of relayed
/// addresses of all our allocations. The I/O layer implements it behind a lock; it is consulted on Allocate,
/// on permission changes and on release, and per packet only for peers that are our own relayed addresses.
public protocol TURNSharedState: AnyObject, Sendable {
    func acquireAllocation(username: String, client: STUNAddress) -> Bool
    func releaseAllocation(username: String, client: STUNAddress)
    func relayOpened(_ address: STUNAddress)
    func relayClosed(_ address: STUNAddress)
    func isRelayedAddress(_ address: STUNAddress) -> Bool
}

/// `TURNSharedState` behind one mutex: what the server uses and what tests use.
public final class LockedTURNSharedState: TURNSharedState {
    private struct State {
        var quotas: AllocationQuotas
        var relays: Set<STUNAddress> = []
    }
    private let state: Mutex<State>

    public init(quotas: AllocationQuotas) {
        state = Mutex(State(quotas: quotas))
    }

    public func acquireAllocation(username: String, client: STUNAddress) -> Bool {
        state.withLock { $0.quotas.acquire(username: username, client: client) }
    }
    public func releaseAllocation(username: String, client: STUNAddress) {
        state.withLock { $0.quotas.release(username: username, client: client) }
    }
    public func relayOpened(_ address: STUNAddress) { _ = state.withLock { $0.relays.insert(address) } }
    public func relayClosed(_ address: STUNAddress) { _ = state.withLock { $0.relays.remove(address) } }
    public func isRelayedAddress(_ address: STUNAddress) -> Bool { state.withLock { $0.relays.contains(address) } }
    /// Live allocations on all loops.
    public var allocationCount: Int { state.withLock { $0.quotas.current } }
}

/// The server's fixed settings.
public struct TURNEngineSettings: Sendable {
    public var realm: String
    /// SOFTWARE in responses; nil (the default) sends none.
    public var software: String?
    public var limits = AllocationLimits()
    /// Which relay families this server can allocate.
    public var relayFamilies: [STUNAddressFamily] = [.ipv4]

    public init(realm: String, software: String? = nil) {
        self.realm = realm
        self.software = software
    }
}

/// An Allocate that passed every check and needs its relayed sockets: the I/O layer binds them and calls
/// `TURNEngine.completeAllocation` (or `failAllocation`).
public struct PendingAllocation: Sendable {
    public let fiveTuple: FiveTuple
    public let transactionID: STUNTransactionID
    public let username: String
    public let key: [UInt8]
    /// One relayed address per family, in this order.
    public let families: [STUNAddressFamily]
    /// EVEN-PORT: the relayed port must be even.
    public let evenPort: Bool
    /// EVEN-PORT with R: keep the next port for a later Allocate with the RESERVATION-TOKEN the I/O layer makes.
    public let reserveNextPort: Bool
    /// RESERVATION-TOKEN: take the relayed socket reserved under this token (the I/O layer keeps them; 508 when
    /// it has none).
    public let reservationToken: UInt64?
    /// DONT-FRAGMENT: set the don't-fragment bit on relayed packets.
    public let dontFragment: Bool
    public let lifetime: Int64
    let replyStyle: ReplyStyle
    /// ADDRESS-ERROR-CODE for a requested additional family the server cannot serve.
    let addressError: STUNAddressFamily?
}

/// How to sign and finish a response: the same integrity attributes the request carried, FINGERPRINT if it had one.
struct ReplyStyle: Sendable {
    var key: [UInt8]?
    var sha1 = true
    var sha256Length: Int?
    var fingerprint = false

    var integrity: STUNIntegrity? {
        key.map { STUNIntegrity(key: $0, sha1: sha1, sha256Length: sha256Length) }
    }
}

/// What the I/O layer does with a message from a client.
public enum TURNAction: Sendable {
    /// Nothing (indications that lead nowhere, responses, rate-limited errors, garbage).
    case drop
    /// Send these bytes to the client; then close these relays (a deleted allocation).
    case reply([UInt8], closing: [RelayID])
    /// Open relayed sockets for this Allocate.
    case allocate(PendingAllocation)
    /// A Send indication: send the bytes of `payload` (a range of the message) from `relay` to `peer`.
    case forward(peer: STUNAddress, relay: RelayID, payload: Range<Int>)
}

/// How data from a peer goes to the client.
public enum ClientDelivery: Hashable, Sendable {
    case channelData(UInt16)
    case dataIndication
}

/// The TURN server of one event loop as a pure state machine (RFC 8489, RFC 8656): authentication with stateless
/// nonces and REST credentials, the allocation table, permissions and channels, retransmission cache, quotas,
/// peer policy. No sockets and no clock: the caller passes the time and performs the returned actions.
public struct TURNEngine: Sendable {
    public var settings: TURNEngineSettings
    public var authenticator: RESTAuthenticator
    public var policy: PeerPolicy
    public let nonces: NonceAuthority
    public let shared: any TURNSharedState
    /// The allocations, in slots found through `slotByFiveTuple`: the data paths mutate them in place through the
    /// array, which (unlike a dictionary's subscript) does not allocate even in unoptimised builds.
    private var slots: [Allocation?] = []
    private var freeSlots: [Int] = []
    private var slotByFiveTuple: [FiveTuple: Int] = [:]
    var cache = TransactionCache()
    var errorLimiter = ErrorRateLimiter()
    /// What this engine counted, for metrics.
    public private(set) var counters = TURNCounters()

    public init(
        settings: TURNEngineSettings, authenticator: RESTAuthenticator, policy: PeerPolicy, nonces: NonceAuthority,
        shared: any TURNSharedState
    ) {
        self.settings = settings
        self.authenticator = authenticator
        self.policy = policy
        self.nonces = nonces
        self.shared = shared
    }

    /// Every live allocation by 5-tuple (for inspection; the engine itself goes through the slots).
    public var allocations: [FiveTuple: Allocation] {
        slotByFiveTuple.mapValues { slots[$0]! }
    }

    public var allocationCount: Int { slotByFiveTuple.count }

    @inline(__always)
    public func allocation(_ fiveTuple: FiveTuple) -> Allocation? {
        guard let slot = slotByFiveTuple[fiveTuple] else { return nil }
        return slots[slot]
    }

    /// The slot and state of the live (unexpired) allocation of `fiveTuple`.
    private func liveAllocation(_ fiveTuple: FiveTuple, now: Int64) -> (slot: Int, allocation: Allocation)? {
        guard let slot = slotByFiveTuple[fiveTuple], let allocation = slots[slot], !allocation.isExpired(now: now)
        else { return nil }
        return (slot, allocation)
    }

    private mutating func insert(_ allocation: Allocation) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = allocation
        } else {
            slot = slots.count
            slots.append(allocation)
        }
        slotByFiveTuple[allocation.fiveTuple] = slot
    }

    // MARK: Requests and indications

    /// Handles one STUN message from a client. `now` is monotonic seconds (lifetimes, nonces), `wallClock` Unix
    /// seconds (credential expiry).
    public mutating func handle(
        _ bytes: UnsafeRawBufferPointer, from fiveTuple: FiveTuple, now: Int64, wallClock: Int64
    ) -> TURNAction {
        guard let header = try? STUNHeader(parsing: bytes) else { return .drop }
        switch header.type.messageClass {
        case .indication:
            return header.type.method == .send ? sendIndication(bytes, from: fiveTuple, now: now) : .drop
        case .successResponse, .errorResponse:
            return .drop
        case .request:
            break
        }
        let cacheKey = TransactionCache.Key(fiveTuple: fiveTuple, transactionID: header.transactionID)
        if let cached = cache.response(for: cacheKey, now: now) { return .reply(cached, closing: []) }
        guard let request = try? STUNMessage(parsing: bytes) else {
            return errorReply(header, .badRequest, to: fiveTuple, style: ReplyStyle(), now: now)
        }
        var style = ReplyStyle()
        style.fingerprint = request.fingerprint != nil

        if header.type.method == .binding {
            return .reply(
                response(to: request, attributes: [.xorMappedAddress(fiveTuple.client)], style: style), closing: [])
        }
        let unknown = request.unknownComprehensionRequiredAttributes
        if !unknown.isEmpty {
            return errorReply(
                header, .unknownAttribute, extra: [.unknownAttributes(unknown)], to: fiveTuple, style: style, now: now)
        }

        // Long-term credentials (RFC 8489 §9.2.4), REST passwords, stateless nonces.
        let hasSHA1 = request.messageIntegrity != nil
        let sha256 = request.messageIntegritySHA256
        guard hasSHA1 || sha256 != nil else { return challenge(header, .unauthenticated, fiveTuple, style, now) }
        guard let username = request.username, let realm = request.realm, let nonce = request.nonce else {
            return errorReply(header, .badRequest, to: fiveTuple, style: style, now: now)
        }
        guard realm == settings.realm else { return challenge(header, .unauthenticated, fiveTuple, style, now) }
        // An allocation keeps the key it was made with: a secret rotation (even two) never cuts a live call,
        // but the credential's own expiry still ends it.
        let keys: [[UInt8]]
        if let existing = allocation(fiveTuple), existing.username == username {
            guard let expiry = RESTAuthenticator.expiry(of: username), expiry > wallClock else {
                return challenge(header, .unauthenticated, fiveTuple, style, now)
            }
            keys = [existing.key]
        } else {
            guard case .success(let fresh) = authenticator.keys(for: username, now: wallClock) else {
                return challenge(header, .unauthenticated, fiveTuple, style, now)
            }
            keys = fresh
        }
        let verified = keys.first { key in
            (!hasSHA1 || STUNMessage.verifyMessageIntegrity(bytes, key: key))
                && (sha256 == nil || STUNMessage.verifyMessageIntegritySHA256(bytes, key: key))
        }
        guard let key = verified else { return challenge(header, .unauthenticated, fiveTuple, style, now) }
        guard nonces.check(nonce, for: fiveTuple.client, now: now) == .valid else {
            return challenge(header, .staleNonce, fiveTuple, style, now)
        }
        style.key = key
        style.sha1 = hasSHA1
        style.sha256Length = sha256?.count
        // Another user on this 5-tuple: 441, except for Allocate, which gets 437 below (RFC 8656 §7.2), so that
        // a client whose port was reused retries from a fresh one instead of failing.
        if header.type.method != .allocate, let existing = allocation(fiveTuple), existing.username != username {
            return errorReply(header, .wrongCredentials, to: fiveTuple, style: style, now: now)
        }

        let action: TURNAction
        switch header.type.method {
        case .allocate: action = allocate(request, username: username, key: key, fiveTuple, style, now)
        case .refresh: action = refresh(request, fiveTuple, style, now)
        case .createPermission: action = createPermission(request, fiveTuple, style, now)
        case .channelBind: action = channelBind(request, fiveTuple, style, now)
        default: action = errorReply(header, .badRequest, to: fiveTuple, style: style, now: now)
        }
        if case .reply(let bytes, _) = action { cache.store(bytes, for: cacheKey, now: now) }
        return action
    }

    private mutating func allocate(
        _ request: STUNMessage, username: String, key: [UInt8], _ fiveTuple: FiveTuple, _ style: ReplyStyle,
        _ now: Int64
    ) -> TURNAction {
        guard allocation(fiveTuple) == nil else { return failure(request, style, .allocationMismatch) }
        guard let transport = request.requestedTransport else { return failure(request, style, .badRequest) }
        guard transport == 17 else { return failure(request, style, .unsupportedTransportProtocol) }
        // A reserved socket has its port and family already: asking for either as well is a bad request
        // (RFC 8656 §7.2).
        if request.reservationToken != nil,
            request.evenPort != nil || request.requestedAddressFamily != nil || request.additionalAddressFamily != nil
        {
            return failure(request, style, .badRequest)
        }
        var families: [STUNAddressFamily] = [.ipv4]
        var addressError: STUNAddressFamily?
        switch (request.requestedAddressFamily, request.additionalAddressFamily) {
        case (.some, .some):
            return failure(request, style, .badRequest)
        case (.some(let family), nil):
            guard family == .ipv4 || family == .ipv6 else { return failure(request, style, .addressFamilyNotSupported) }
            guard settings.relayFamilies.contains(family) else {
                return failure(request, style, .addressFamilyNotSupported)
            }
            families = [family]
        case (nil, .some(let family)):
            guard family == .ipv6 else { return failure(request, style, .badRequest) }
            if settings.relayFamilies.contains(.ipv6) { families.append(.ipv6) } else { addressError = .ipv6 }
        case (nil, nil):
            break
        }
        guard families.allSatisfy(settings.relayFamilies.contains) else {
            return failure(request, style, .addressFamilyNotSupported)
        }
        guard shared.acquireAllocation(username: username, client: fiveTuple.client) else {
            counters.quotaRefusals += 1
            return failure(request, style, .allocationQuotaReached)
        }
        return .allocate(
            PendingAllocation(
                fiveTuple: fiveTuple, transactionID: request.transactionID, username: username, key: key,
                families: families, evenPort: request.evenPort != nil, reserveNextPort: request.evenPort == true,
                reservationToken: request.reservationToken, dontFragment: request.dontFragment,
                lifetime: settings.limits.lifetime(requested: request.lifetime), replyStyle: style,
                addressError: addressError))
    }

    /// Installs the allocation once its relayed sockets are bound; `relays` are in `pending.families` order,
    /// each with the address to advertise, and `reservationToken` names the port reserved for EVEN-PORT with R.
    /// Returns the success response.
    public mutating func completeAllocation(
        _ pending: PendingAllocation, relays: [(address: STUNAddress, relay: RelayID)],
        reservationToken: UInt64? = nil, now: Int64
    ) -> [UInt8] {
        let allocation = Allocation(
            fiveTuple: pending.fiveTuple, username: pending.username, key: pending.key, relays: relays,
            lifetime: pending.lifetime, now: now, limits: settings.limits)
        insert(allocation)
        counters.allocations += 1
        for relay in relays { shared.relayOpened(relay.address) }
        var attributes = relays.map { STUNAttribute.xorRelayedAddress($0.address) }
        if let family = pending.addressError {
            attributes.append(.addressErrorCode(family: family, error: .addressFamilyNotSupported))
        }
        attributes.append(.lifetime(UInt32(pending.lifetime)))
        if let reservationToken { attributes.append(.reservationToken(reservationToken)) }
        attributes.append(.xorMappedAddress(pending.fiveTuple.client))
        let bytes = build(
            method: .allocate, class: .successResponse, transactionID: pending.transactionID, attributes: attributes,
            style: pending.replyStyle)
        cache.store(
            bytes, for: TransactionCache.Key(fiveTuple: pending.fiveTuple, transactionID: pending.transactionID),
            now: now)
        return bytes
    }

    /// The answer when the relayed sockets could not be bound (508); releases the quota taken.
    public mutating func failAllocation(_ pending: PendingAllocation) -> [UInt8] {
        shared.releaseAllocation(username: pending.username, client: pending.fiveTuple.client)
        return build(
            method: .allocate, class: .errorResponse, transactionID: pending.transactionID,
            attributes: [.errorCode(.insufficientCapacity)], style: pending.replyStyle)
    }

    private mutating func refresh(
        _ request: STUNMessage, _ fiveTuple: FiveTuple, _ style: ReplyStyle, _ now: Int64
    ) -> TURNAction {
        guard let (slot, allocation) = liveAllocation(fiveTuple, now: now) else {
            return failure(request, style, .allocationMismatch)
        }
        if let family = request.requestedAddressFamily,
            !allocation.relays.contains(where: { $0.address.family == family })
        {
            return failure(request, style, .peerAddressFamilyMismatch)
        }
        let lifetime = settings.limits.lifetime(requested: request.lifetime)
        if lifetime == 0 {
            let relays = remove(fiveTuple)
            return .reply(response(to: request, attributes: [.lifetime(0)], style: style), closing: relays)
        }
        slots[slot]!.expiry = now + lifetime
        return .reply(response(to: request, attributes: [.lifetime(UInt32(lifetime))], style: style), closing: [])
    }

    private mutating func createPermission(
        _ request: STUNMessage, _ fiveTuple: FiveTuple, _ style: ReplyStyle, _ now: Int64
    ) -> TURNAction {
        guard let (slot, allocation) = liveAllocation(fiveTuple, now: now) else {
            return failure(request, style, .allocationMismatch)
        }
        let peers = request.xorPeerAddresses
        guard !peers.isEmpty else { return failure(request, style, .badRequest) }
        var admissions: [Admission] = []
        for peer in peers {
            guard allocation.relay(for: peer) != nil else { return failure(request, style, .peerAddressFamilyMismatch) }
            guard let admission = admission(of: peer) else { return refusePeer(request, style) }
            admissions.append(admission)
        }
        guard allocation.canInstallPermissions(peers, now: now) else {
            return failure(request, style, .insufficientCapacity)
        }
        for (peer, admission) in zip(peers, admissions) {
            slots[slot]!.installPermission(peer, now: now, onlyAsOurRelay: admission == .onlyAsOurRelay)
        }
        return .reply(response(to: request, attributes: [], style: style), closing: [])
    }

    private mutating func channelBind(
        _ request: STUNMessage, _ fiveTuple: FiveTuple, _ style: ReplyStyle, _ now: Int64
    ) -> TURNAction {
        guard let (slot, allocation) = liveAllocation(fiveTuple, now: now) else {
            return failure(request, style, .allocationMismatch)
        }
        guard let number = request.channelNumber, ChannelData.validNumbers.contains(number),
            let peer = request.xorPeerAddresses.first
        else { return failure(request, style, .badRequest) }
        guard allocation.relay(for: peer) != nil else { return failure(request, style, .peerAddressFamilyMismatch) }
        guard let admission = admission(of: peer) else { return refusePeer(request, style) }
        do {
            try slots[slot]!.bindChannel(number, to: peer, now: now, onlyAsOurRelay: admission == .onlyAsOurRelay)
        } catch .conflict {
            return failure(request, style, .badRequest)
        } catch {
            return failure(request, style, .insufficientCapacity)
        }
        return .reply(response(to: request, attributes: [], style: style), closing: [])
    }

    private enum Admission {
        /// The policy allows the peer.
        case allowed
        /// The policy denies it, but it is the relayed address of one of our allocations (two users of this
        /// server): reachable while that allocation lives, which the data paths check per packet.
        case onlyAsOurRelay
    }

    /// Whether a permission or channel for `peer` may be installed, and on what grounds; nil to refuse it.
    private func admission(of peer: STUNAddress) -> Admission? {
        if policy.decide(peer) == .allow { return .allowed }
        if policy.decide(peer, isOwnRelayedAddress: shared.isRelayedAddress(peer)) == .allow { return .onlyAsOurRelay }
        return nil
    }

    /// A Send indication (RFC 8656 §11.1): parsed without decoding anything but XOR-PEER-ADDRESS and DATA.
    private mutating func sendIndication(
        _ bytes: UnsafeRawBufferPointer, from fiveTuple: FiveTuple, now: Int64
    ) -> TURNAction {
        var peerRange: Range<Int>?
        var dataRange: Range<Int>?
        guard
            let header = try? STUNMessage.scan(
                bytes,
                { raw in
                    if raw.type == .xorPeerAddress, peerRange == nil { peerRange = raw.value }
                    if raw.type == .data, dataRange == nil { dataRange = raw.value }
                }), let peerRange, let dataRange,
            let peer = STUNAddress(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[peerRange]), xor: header.transactionID),
            let relay = outboundRelay(to: peer, from: fiveTuple, length: dataRange.count, now: now)
        else { return .drop }
        return .forward(peer: peer, relay: relay, payload: dataRange)
    }

    // MARK: Data paths

    /// The relay and peer for client data to `peer` (Send indications): needs a live permission, and our own
    /// addresses only as relayed addresses of live allocations; charges the bandwidth cap.
    public mutating func outboundRelay(to peer: STUNAddress, from fiveTuple: FiveTuple, length: Int, now: Int64)
        -> RelayID?
    {
        guard let slot = slotByFiveTuple[fiveTuple], let allocation = slots[slot], !allocation.isExpired(now: now),
            allocation.hasPermission(peer, now: now), let relay = allocation.relay(for: peer),
            slots[slot]!.admit(bytes: length, outbound: true, now: now)
        else { return nil }
        // Permissions are per host: on our own host, only our relayed addresses (or what the operator allows,
        // never our service ports) may be reached, whatever port the indication names.
        if policy.isOwnHost(peer), !shared.isRelayedAddress(peer), policy.decide(peer) != .allow { return nil }
        counters.packetsToPeers += 1
        counters.bytesToPeers += length
        return relay.relay
    }

    /// The peer and relay for a ChannelData message from the client: the hot path. A channel to one of our relayed
    /// addresses works only while that allocation lives (the one check beyond a lookup, and only for those).
    @inline(__always)
    public mutating func channelTarget(_ number: UInt16, from fiveTuple: FiveTuple, length: Int, now: Int64)
        -> (peer: STUNAddress, relay: RelayID)?
    {
        guard let slot = slotByFiveTuple[fiveTuple], let allocation = slots[slot],
            let channel = allocation.channel(number, now: now), !allocation.isExpired(now: now),
            !channel.onlyAsOurRelay || shared.isRelayedAddress(channel.peer),
            let relay = allocation.relay(for: channel.peer),
            slots[slot]!.admit(bytes: length, outbound: true, now: now)
        else { return nil }
        counters.packetsToPeers += 1
        counters.bytesToPeers += length
        return (channel.peer, relay.relay)
    }

    /// How data from `peer` reaches the client of `fiveTuple`, or nil to drop it (no permission, expired, cap, or
    /// a host that is ours and `peer` no longer one of our relayed addresses).
    @inline(__always)
    public mutating func inboundDelivery(from peer: STUNAddress, to fiveTuple: FiveTuple, length: Int, now: Int64)
        -> ClientDelivery?
    {
        guard let slot = slotByFiveTuple[fiveTuple], let allocation = slots[slot], !allocation.isExpired(now: now),
            let permission = allocation.permission(for: peer, now: now),
            !permission.onlyAsOurRelay || shared.isRelayedAddress(peer),
            slots[slot]!.admit(bytes: length, outbound: false, now: now)
        else { return nil }
        counters.packetsFromPeers += 1
        counters.bytesFromPeers += length
        if let number = allocation.channel(for: peer, now: now) { return .channelData(number) }
        return .dataIndication
    }

    // MARK: Housekeeping

    /// Drops expired allocations (returning their relays to close), permissions, channels and cache entries.
    public mutating func sweep(now: Int64) -> [RelayID] {
        var closed: [RelayID] = []
        for (fiveTuple, slot) in slotByFiveTuple {
            if slots[slot]!.isExpired(now: now) {
                closed += remove(fiveTuple)
            } else {
                slots[slot]!.sweep(now: now)
            }
        }
        cache.sweep(now: now)
        return closed
    }

    /// Removes every allocation (shutdown), returning their relays.
    public mutating func removeAll() -> [RelayID] {
        Array(slotByFiveTuple.keys).flatMap { remove($0) }
    }

    /// Removes the allocation of `fiveTuple` (a closed TCP connection), returning its relays.
    public mutating func remove(_ fiveTuple: FiveTuple) -> [RelayID] {
        guard let slot = slotByFiveTuple.removeValue(forKey: fiveTuple), let allocation = slots[slot] else { return [] }
        slots[slot] = nil
        freeSlots.append(slot)
        shared.releaseAllocation(username: allocation.username, client: fiveTuple.client)
        for relay in allocation.relays { shared.relayClosed(relay.address) }
        return allocation.relays.map(\.relay)
    }

    // MARK: Responses

    private mutating func challenge(
        _ header: STUNHeader, _ code: STUNErrorCode, _ fiveTuple: FiveTuple, _ style: ReplyStyle, _ now: Int64
    ) -> TURNAction {
        if code == .unauthenticated { counters.unauthorized += 1 }
        let nonce = nonces.issue(for: fiveTuple.client, now: now)
        return errorReply(
            header, code, extra: [.realm(settings.realm), .nonce(nonce)], to: fiveTuple, style: style, now: now)
    }

    private mutating func errorReply(
        _ header: STUNHeader, _ code: STUNErrorCode, extra: [STUNAttribute] = [], to fiveTuple: FiveTuple,
        style: ReplyStyle, now: Int64
    ) -> TURNAction {
        if style.key == nil, fiveTuple.transport == .udp, !errorLimiter.allow(fiveTuple.client, now: now) {
            return .drop
        }
        let bytes = build(
            method: header.type.method, class: .errorResponse, transactionID: header.transactionID,
            attributes: [.errorCode(code)] + extra, style: style)
        return .reply(bytes, closing: [])
    }

    private func response(to request: STUNMessage, attributes: [STUNAttribute], style: ReplyStyle) -> [UInt8] {
        build(
            method: request.type.method, class: .successResponse, transactionID: request.transactionID,
            attributes: attributes, style: style)
    }

    /// 403 for a peer the policy refuses.
    private mutating func refusePeer(_ request: STUNMessage, _ style: ReplyStyle) -> TURNAction {
        counters.refusedPeers += 1
        return failure(request, style, .forbidden)
    }

    private func failure(_ request: STUNMessage, _ style: ReplyStyle, _ code: STUNErrorCode) -> TURNAction {
        .reply(response(to: request, error: code, style: style), closing: [])
    }

    private func response(to request: STUNMessage, error: STUNErrorCode, style: ReplyStyle) -> [UInt8] {
        build(
            method: request.type.method, class: .errorResponse, transactionID: request.transactionID,
            attributes: [.errorCode(error)], style: style)
    }

    private func build(
        method: STUNMethod, class messageClass: STUNClass, transactionID: STUNTransactionID,
        attributes: [STUNAttribute], style: ReplyStyle
    ) -> [UInt8] {
        var attributes = attributes
        if let software = settings.software { attributes.append(.software(software)) }
        let message = STUNMessage(
            method: method, class: messageClass, transactionID: transactionID, attributes: attributes)
        // Every attribute here is built by the engine within the encoder's bounds.
        return (try? message.encoded(integrity: style.integrity, fingerprint: style.fingerprint)) ?? []
    }
}
