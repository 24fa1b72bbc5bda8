import ChatmailCrypto
import ChatmailSidecar
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TURNCore

/// A relayed address of one of our allocations, which data from another of our allocations is handed to in
/// process (two users of one chatmail server calling each other) instead of through the kernel.
protocol HairpinTarget: AnyObject, Sendable {
    var address: STUNAddress { get }
    /// Delivers `payload` from `source` (another allocation's relayed address) to this allocation's client, on
    /// the thread that owns this relay; called from any thread.
    func deliverFromAnotherThread(_ payload: [UInt8], from source: STUNAddress)
}

/// One relayed UDP socket of a TCP or TLS client's allocation, confined to the event loop of its allocation.
final class RelaySocket: HairpinTarget, @unchecked Sendable {
    let channel: any Channel
    /// The relayed address clients are told (and peers send to).
    let address: STUNAddress
    unowned let state: LoopState
    let fiveTuple: FiveTuple
    /// The client's connection.
    let client: any Channel
    /// Peers' NIO addresses, so that relaying builds no `SocketAddress` per packet.
    private var peerAddresses: [STUNAddress: SocketAddress] = [:]
    /// Whether something was written since the last flush.
    var needsFlush = false

    init(channel: any Channel, address: STUNAddress, state: LoopState, fiveTuple: FiveTuple, client: any Channel) {
        self.channel = channel
        self.address = address
        self.state = state
        self.fiveTuple = fiveTuple
        self.client = client
    }

    @inline(__always)
    func send(_ payload: ByteBuffer, to peer: STUNAddress) {
        let address: SocketAddress
        if let known = peerAddresses[peer] {
            address = known
        } else {
            address = SocketAddress(peer)
            if peerAddresses.count >= 64 { peerAddresses.removeAll(keepingCapacity: true) }
            peerAddresses[peer] = address
        }
        channel.write(AddressedEnvelope(remoteAddress: address, data: payload), promise: nil)
        needsFlush = true
    }

    func deliverFromAnotherThread(_ payload: [UInt8], from source: STUNAddress) {
        state.eventLoop.execute {
            self.state.deliverInProcess(ByteBuffer(bytes: payload), from: source, to: self)
        }
    }
}

/// The relayed sockets of every loop and shard by relayed address, for data between two of our allocations.
final class HairpinRegistry: Sendable {
    private let targets = Mutex<[STUNAddress: any HairpinTarget]>([:])

    func register(_ target: any HairpinTarget) { targets.withLock { $0[target.address] = target } }
    func unregister(_ target: any HairpinTarget) {
        targets.withLock { if $0[target.address] === target { $0[target.address] = nil } }
    }
    func target(at address: STUNAddress) -> (any HairpinTarget)? { targets.withLock { $0[address] } }
}

/// The TURN state of one event loop for clients over TCP and TLS: its engine and the relays of their allocations.
/// Everything here runs on `eventLoop` only (the handlers of its connections and relays are on the same loop), so
/// nothing needs a lock. UDP clients are served by `UDPShard`s.
final class LoopState: @unchecked Sendable {
    let eventLoop: any EventLoop
    var engine: TURNEngine
    let relaySettings: RelaySettings
    let reservations: RelayReservations
    let hairpin: HairpinRegistry
    let logger: Logger
    /// Packets handed from one of our allocations to another in process (logged at shutdown).
    private(set) var hairpinPackets = 0
    /// Allocates in flight (relay sockets being bound), so retransmissions do not allocate twice.
    private var pendingAllocations: Set<FiveTuple> = []
    /// The relayed sockets of this loop's allocations, by `RelayID`; freed slots are reused.
    private var relaySockets: [RelaySocket?] = []
    private var freeRelaySlots: [UInt32] = []
    /// Relays written to during the current read burst, flushed at its end.
    private var dirtyRelays: [RelaySocket] = []
    private var indicationIDs = IndicationIDs()

    init(
        eventLoop: any EventLoop, engine: TURNEngine, relaySettings: RelaySettings, reservations: RelayReservations,
        hairpin: HairpinRegistry, logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.engine = engine
        self.relaySettings = relaySettings
        self.reservations = reservations
        self.hairpin = hairpin
        self.logger = logger
    }

    @inline(__always)
    var now: Int64 { TURNClock.monotonicSeconds }

    // MARK: From clients

    /// One frame (STUN message or ChannelData) from a TCP or TLS client.
    func handleClientMessage(_ buffer: ByteBuffer, fiveTuple: FiveTuple, client: any Channel) {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return }
        if first & 0xC000 == 0x4000 {
            // ChannelData, the hot path: a header check, an array lookup, a slice, a write.
            guard let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self),
                Int(length) <= buffer.readableBytes - 4,
                let target = engine.channelTarget(first, from: fiveTuple, length: Int(length), now: now),
                let payload = buffer.getSlice(at: buffer.readerIndex + 4, length: Int(length))
            else { return }
            send(payload, to: target.peer, via: socket(target.relay))
            return
        }
        let action = buffer.withUnsafeReadableBytes { bytes in
            engine.handle(bytes, from: fiveTuple, now: now, wallClock: TURNClock.wallSeconds)
        }
        if logger.logLevel <= .trace { logger.trace("from \(personal: fiveTuple): \(personal: action)") }
        switch action {
        case .drop:
            break
        case .reply(let bytes, let closing):
            reply(bytes, to: client)
            close(closing)
        case .forward(let peer, let relay, let payload):
            guard let slice = buffer.getSlice(at: buffer.readerIndex + payload.lowerBound, length: payload.count)
            else { return }
            send(slice, to: peer, via: socket(relay))
        case .allocate(let pending):
            guard pendingAllocations.insert(fiveTuple).inserted else { return }
            openRelays(for: pending, client: client)
        }
    }

    @inline(__always)
    private func send(_ payload: ByteBuffer, to peer: STUNAddress, via relay: RelaySocket) {
        // To one of our own relayed addresses: straight into that allocation, on its thread.
        if engine.policy.isOwnHost(peer), let target = hairpin.target(at: peer) {
            if let local = target as? RelaySocket, local.state === self {
                deliverInProcess(payload, from: relay.address, to: local)
            } else {
                target.deliverFromAnotherThread(Array(payload.readableBytesView), from: relay.address)
            }
            return
        }
        if !relay.needsFlush { dirtyRelays.append(relay) }
        relay.send(payload, to: peer)
    }

    func deliverInProcess(_ payload: ByteBuffer, from source: STUNAddress, to target: RelaySocket) {
        hairpinPackets += 1
        handlePeerData(payload, from: source, to: target.fiveTuple, client: target.client)
        target.client.flush()
    }

    /// Ends a read burst from clients: one flush per relay written to (NIO then batches with sendmmsg).
    func flushRelays() {
        for relay in dirtyRelays {
            relay.needsFlush = false
            relay.channel.flush()
        }
        dirtyRelays.removeAll(keepingCapacity: true)
    }

    private func reply(_ bytes: [UInt8], to client: any Channel) {
        client.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    /// A TCP or TLS client went away: its allocation goes with it (RFC 8656 §3.2).
    func connectionClosed(_ fiveTuple: FiveTuple) {
        close(engine.remove(fiveTuple))
    }

    func close(_ relays: [RelayID]) {
        for id in relays {
            let slot = Int(id.rawValue)
            if let socket = relaySockets[slot] { hairpin.unregister(socket) }
            relaySockets[slot]?.channel.close(promise: nil)
            relaySockets[slot] = nil
            freeRelaySlots.append(id.rawValue)
        }
    }

    @inline(__always)
    private func socket(_ id: RelayID) -> RelaySocket {
        relaySockets[Int(id.rawValue)]!
    }

    private func register(_ socket: RelaySocket) -> RelayID {
        if let slot = freeRelaySlots.popLast() {
            relaySockets[Int(slot)] = socket
            return RelayID(slot)
        }
        relaySockets.append(socket)
        return RelayID(UInt32(relaySockets.count - 1))
    }

    // MARK: Relayed sockets

    private func openRelays(for pending: PendingAllocation, client: any Channel) {
        let opened: (relays: [BoundRelay], reservationToken: UInt64?)
        do {
            opened = try relaySettings.open(for: pending, reservations: reservations, now: now)
        } catch {
            pendingAllocations.remove(pending.fiveTuple)
            logger.warning("could not open a relayed socket: \(error)")
            reply(engine.failAllocation(pending), to: client)
            return
        }
        let channels = opened.relays.map { relay in
            DatagramBootstrap(group: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RelayHandler(state: self, fiveTuple: pending.fiveTuple, client: client))
                    }
                }
                .withBoundSocket(relay.fd)
        }
        EventLoopFuture.whenAllComplete(channels, on: eventLoop).whenSuccess { results in
            self.pendingAllocations.remove(pending.fiveTuple)
            let sockets = zip(opened.relays, results).compactMap { relay, result in
                (try? result.get()).map {
                    RelaySocket(
                        channel: $0, address: relay.address, state: self, fiveTuple: pending.fiveTuple, client: client)
                }
            }
            guard sockets.count == opened.relays.count else {
                for socket in sockets { socket.channel.close(promise: nil) }
                self.logger.warning("could not register a relayed socket")
                self.reply(self.engine.failAllocation(pending), to: client)
                return
            }
            let relays = sockets.map { (address: $0.address, relay: self.register($0)) }
            for socket in sockets { self.hairpin.register(socket) }
            let response = self.engine.completeAllocation(
                pending, relays: relays, reservationToken: opened.reservationToken, now: self.now)
            self.logger.debug(
                "allocation",
                metadata: ["client": "\(personal: pending.fiveTuple)", "relay": "\(relays.map(\.address))"])
            self.reply(response, to: client)
        }
    }

    // MARK: From peers

    /// A datagram from `peer` on a relayed socket of `fiveTuple`'s allocation.
    @inline(__always)
    func handlePeerData(_ payload: ByteBuffer, from peer: STUNAddress, to fiveTuple: FiveTuple, client: any Channel) {
        let length = payload.readableBytes
        guard let delivery = engine.inboundDelivery(from: peer, to: fiveTuple, length: length, now: now) else { return }
        // Relayed media to a client that does not keep up is dropped rather than queued without bound.
        guard client.isWritable else { return }
        switch delivery {
        case .channelData(let number):
            // Over a stream every ChannelData message is padded to a multiple of 4 (RFC 8656 §12.5).
            let padding = DataIndication.paddingLength(payload: length)
            var buffer = client.allocator.buffer(capacity: 4 + length + padding)
            buffer.writeInteger(ChannelData.header(channel: number, length: length))
            buffer.writeImmutableBuffer(payload)
            buffer.writeRepeatingByte(0, count: padding)
            client.write(buffer, promise: nil)
        case .dataIndication:
            let headerLength = DataIndication.headerLength(peer: peer)
            let padding = DataIndication.paddingLength(payload: length)
            var buffer = client.allocator.buffer(capacity: headerLength + length + padding)
            let id = indicationIDs.next()
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: headerLength) { header in
                DataIndication.writeHeader(to: header.baseAddress!, peer: peer, length: length, transactionID: id)
                return headerLength
            }
            buffer.writeImmutableBuffer(payload)
            buffer.writeRepeatingByte(0, count: padding)
            client.write(buffer, promise: nil)
        }
    }

    // MARK: Housekeeping

    func sweep() {
        close(engine.sweep(now: now))
    }

    func shutdown() {
        close(engine.removeAll())
        if hairpinPackets > 0 { logger.info("relayed \(hairpinPackets) packets in process between our allocations") }
    }
}

/// The clocks the engines run on.
enum TURNClock {
    /// Monotonic seconds, for lifetimes and nonces.
    @inline(__always)
    static var monotonicSeconds: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec)
    }

    /// Unix seconds, for credential expiry.
    static var wallSeconds: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }
}

public enum TURNServerError: Error, CustomStringConvertible {
    case noRelayAddress
    /// No port is reserved under the RESERVATION-TOKEN of an Allocate (or it expired).
    case noReservation
    case configuration(String)
    /// A system call failed: what was being done, and errno.
    case system(String, Int32)

    public var description: String {
        switch self {
        case .noRelayAddress: "no relay address for the requested family"
        case .noReservation: "no port reserved under that RESERVATION-TOKEN"
        case .configuration(let why): why
        case .system(let what, let error): "\(what): \(String(cString: strerror(error)))"
        }
    }
}
