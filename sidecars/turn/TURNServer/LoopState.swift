import ChatmailCrypto
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TURNCore

/// Where answers and relayed data for one client go: the UDP listener it spoke to (with its address), or its
/// TCP/TLS connection.
enum ClientPath {
    case datagram(any Channel, SocketAddress)
    case stream(any Channel)

    var isStream: Bool {
        if case .stream = self { true } else { false }
    }

    /// Writes `buffer`; relayed media (`isMedia`) to a TCP or TLS client that does not keep up is dropped
    /// rather than queued without bound.
    @inline(__always)
    func write(_ buffer: ByteBuffer, isMedia: Bool = true) {
        switch self {
        case .datagram(let channel, let address):
            channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        case .stream(let channel):
            guard !isMedia || channel.isWritable else { return }
            channel.write(buffer, promise: nil)
        }
    }

    func flush() {
        switch self {
        case .datagram(let channel, _): channel.flush()
        case .stream(let channel): channel.flush()
        }
    }
}

/// One relayed UDP socket of an allocation, confined to the event loop of its allocation.
final class RelaySocket: @unchecked Sendable {
    let channel: any Channel
    /// The relayed address clients are told (and peers send to).
    let address: STUNAddress
    /// The allocation it belongs to, for data delivered to it in process.
    unowned let state: LoopState
    let fiveTuple: FiveTuple
    let client: ClientPath
    /// Peers' NIO addresses, so that relaying builds no `SocketAddress` per packet.
    private var peerAddresses: [STUNAddress: SocketAddress] = [:]
    /// Whether something was written since the last flush.
    var needsFlush = false

    init(channel: any Channel, address: STUNAddress, state: LoopState, fiveTuple: FiveTuple, client: ClientPath) {
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
}

/// The relayed sockets of every loop by relayed address, so that data between two allocations of this server
/// (two users of one chatmail server calling each other) is handed over in process instead of through the kernel.
final class HairpinRegistry: Sendable {
    private let sockets = Mutex<[STUNAddress: RelaySocket]>([:])

    func register(_ socket: RelaySocket) { sockets.withLock { $0[socket.address] = socket } }
    func unregister(_ socket: RelaySocket) {
        sockets.withLock { if $0[socket.address] === socket { $0[socket.address] = nil } }
    }
    func socket(at address: STUNAddress) -> RelaySocket? { sockets.withLock { $0[address] } }
}

/// Settings every loop shares, derived once from the configuration.
struct RelaySettings: Sendable {
    /// Per family: the address relayed sockets bind to and the one advertised to clients.
    var relayBind: [STUNAddressFamily: (bind: STUNAddress, advertised: STUNAddress)]
    var relayPorts: ClosedRange<UInt16>
}

/// The TURN state of one event loop: its engine and the relays of its allocations. Everything here runs on
/// `eventLoop` only (the handlers of its listeners, connections and relays are on the same loop), so nothing
/// needs a lock.
final class LoopState: @unchecked Sendable {
    let eventLoop: any EventLoop
    var engine: TURNEngine
    let relaySettings: RelaySettings
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
    /// Data indications carry a transaction ID; a random base and a counter make them unique cheaply.
    private var indicationCounter: UInt64
    private let indicationHigh: UInt32

    init(
        eventLoop: any EventLoop, engine: TURNEngine, relaySettings: RelaySettings, hairpin: HairpinRegistry,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.engine = engine
        self.relaySettings = relaySettings
        self.hairpin = hairpin
        self.logger = logger
        var seed: (UInt32, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &seed.0) { Crypto.randomBytes(into: $0) }
        withUnsafeMutableBytes(of: &seed.1) { Crypto.randomBytes(into: $0) }
        (indicationHigh, indicationCounter) = seed
    }

    /// Monotonic seconds for lifetimes.
    @inline(__always)
    var now: Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000_000) }

    var wallClock: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }

    // MARK: From clients

    /// One message (datagram or stream frame) from a client.
    func handleClientMessage(_ buffer: ByteBuffer, fiveTuple: FiveTuple, path: ClientPath) {
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
            engine.handle(bytes, from: fiveTuple, now: now, wallClock: wallClock)
        }
        if logger.logLevel <= .trace { logger.trace("from \(fiveTuple): \(action)") }
        switch action {
        case .drop:
            break
        case .reply(let bytes, let closing):
            reply(bytes, to: path)
            close(closing)
        case .forward(let peer, let relay, let payload):
            guard let slice = buffer.getSlice(at: buffer.readerIndex + payload.lowerBound, length: payload.count)
            else { return }
            send(slice, to: peer, via: socket(relay))
        case .allocate(let pending):
            guard pendingAllocations.insert(fiveTuple).inserted else { return }
            openRelays(for: pending, path: path)
        }
    }

    @inline(__always)
    private func send(_ payload: ByteBuffer, to peer: STUNAddress, via relay: RelaySocket) {
        // To one of our own relayed addresses: straight into that allocation, on its loop.
        if engine.policy.isOwnHost(peer), let target = hairpin.socket(at: peer) {
            let source = relay.address
            if target.state === self {
                deliverInProcess(payload, from: source, to: target)
            } else {
                target.state.eventLoop.execute { target.state.deliverInProcess(payload, from: source, to: target) }
            }
            return
        }
        if !relay.needsFlush { dirtyRelays.append(relay) }
        relay.send(payload, to: peer)
    }

    private func deliverInProcess(_ payload: ByteBuffer, from source: STUNAddress, to target: RelaySocket) {
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

    private func reply(_ bytes: [UInt8], to path: ClientPath) {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        path.write(buffer, isMedia: false)
        path.flush()
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

    private func openRelays(for pending: PendingAllocation, path: ClientPath) {
        var future = eventLoop.makeSucceededFuture([(address: STUNAddress, socket: RelaySocket)]())
        for family in pending.families {
            future = future.flatMap { opened in
                self.bindRelay(family: family, pending: pending, path: path, attempt: 0).map { opened + [$0] }
                    .flatMapError { error in
                        for relay in opened { relay.socket.channel.close(promise: nil) }
                        return self.eventLoop.makeFailedFuture(error)
                    }
            }
        }
        future.whenComplete { result in
            self.pendingAllocations.remove(pending.fiveTuple)
            switch result {
            case .success(let opened):
                let relays = opened.map { (address: $0.address, relay: self.register($0.socket)) }
                for relay in opened { self.hairpin.register(relay.socket) }
                let response = self.engine.completeAllocation(pending, relays: relays, now: self.now)
                self.logger.debug(
                    "allocation", metadata: ["client": "\(pending.fiveTuple)", "relay": "\(relays.map(\.address))"])
                self.reply(response, to: path)
            case .failure(let error):
                self.logger.warning("could not open a relayed socket: \(error)")
                self.reply(self.engine.failAllocation(pending), to: path)
            }
        }
    }

    private func bindRelay(family: STUNAddressFamily, pending: PendingAllocation, path: ClientPath, attempt: Int)
        -> EventLoopFuture<(address: STUNAddress, socket: RelaySocket)>
    {
        guard let addresses = relaySettings.relayBind[family] else {
            return eventLoop.makeFailedFuture(TURNServerError.noRelayAddress)
        }
        var port = UInt16.random(in: relaySettings.relayPorts)
        if pending.evenPort {
            port &= ~1
            if port < relaySettings.relayPorts.lowerBound { port += 2 }
        }
        var bind = addresses.bind
        bind.port = port
        var advertised = addresses.advertised
        advertised.port = port
        let fiveTuple = pending.fiveTuple
        var bootstrap = DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RelayHandler(state: self, fiveTuple: fiveTuple, client: path))
                }
            }
        if family == .ipv6 {
            bootstrap = bootstrap.channelOption(
                ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
        }
        if pending.dontFragment {
            // IP_MTU_DISCOVER / IPV6_MTU_DISCOVER = *_PMTUDISC_DO: set DF, never fragment locally.
            bootstrap =
                family == .ipv6
                ? bootstrap.channelOption(
                    ChannelOptions.Types.SocketOption(level: .ipv6, name: .init(rawValue: 23)), value: 2)
                : bootstrap.channelOption(
                    ChannelOptions.Types.SocketOption(level: .ip, name: .init(rawValue: 10)), value: 2)
        }
        return bootstrap.bind(to: SocketAddress(bind)).map { channel in
            (
                address: advertised,
                socket: RelaySocket(
                    channel: channel, address: advertised, state: self, fiveTuple: fiveTuple, client: path)
            )
        }.flatMapError { error in
            guard attempt < 16 else { return self.eventLoop.makeFailedFuture(error) }
            return self.bindRelay(family: family, pending: pending, path: path, attempt: attempt + 1)
        }
    }

    // MARK: From peers

    /// A datagram from `peer` on a relayed socket of `fiveTuple`'s allocation.
    @inline(__always)
    func handlePeerData(_ payload: ByteBuffer, from peer: STUNAddress, to fiveTuple: FiveTuple, client: ClientPath) {
        let length = payload.readableBytes
        guard let delivery = engine.inboundDelivery(from: peer, to: fiveTuple, length: length, now: now) else { return }
        switch delivery {
        case .channelData(let number):
            let padding = client.isStream ? (4 - length & 3) & 3 : 0
            var buffer = ByteBufferAllocator().buffer(capacity: 4 + length + padding)
            buffer.writeInteger(ChannelData.header(channel: number, length: length))
            buffer.writeImmutableBuffer(payload)
            if padding > 0 { buffer.writeRepeatingByte(0, count: padding) }
            client.write(buffer)
        case .dataIndication:
            client.write(dataIndication(payload, from: peer))
        }
    }

    /// A Data indication (RFC 8656 §11.4): XOR-PEER-ADDRESS and DATA, built straight into one buffer.
    private func dataIndication(_ payload: ByteBuffer, from peer: STUNAddress) -> ByteBuffer {
        let length = payload.readableBytes
        let addressLength = peer.family == .ipv4 ? 8 : 20
        let attributesLength = 4 + addressLength + 4 + (length + 3) & ~3
        var buffer = ByteBufferAllocator().buffer(capacity: 20 + attributesLength)
        indicationCounter &+= 1
        let id = STUNTransactionID(high: indicationHigh, low: indicationCounter)
        buffer.writeInteger(STUNMessageType.dataIndication.rawValue)
        buffer.writeInteger(UInt16(attributesLength))
        buffer.writeInteger(STUNMessage.magicCookie)
        buffer.writeInteger(id.high)
        buffer.writeInteger(id.low)
        buffer.writeInteger(STUNAttributeType.xorPeerAddress.rawValue)
        buffer.writeInteger(UInt16(addressLength))
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(peer.family.rawValue)
        buffer.writeInteger(peer.port ^ UInt16(STUNMessage.magicCookie >> 16))
        if let v4 = peer.ipv4 {
            buffer.writeInteger(v4 ^ STUNMessage.magicCookie)
        } else {
            let (high, low) = peer.ipv6!
            buffer.writeInteger(high ^ (UInt64(STUNMessage.magicCookie) << 32 | UInt64(id.high)))
            buffer.writeInteger(low ^ id.low)
        }
        buffer.writeInteger(STUNAttributeType.data.rawValue)
        buffer.writeInteger(UInt16(length))
        buffer.writeImmutableBuffer(payload)
        buffer.writeRepeatingByte(0, count: (4 - length & 3) & 3)
        return buffer
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

public enum TURNServerError: Error, CustomStringConvertible {
    case noRelayAddress
    case configuration(String)

    public var description: String {
        switch self {
        case .noRelayAddress: "no relay address for the requested family"
        case .configuration(let why): why
        }
    }
}
