import CDatagramIO
import ChatmailSidecar
import Logging
import Synchronization
import TURNCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// TURN over UDP on a thread of its own: its listeners (`SO_REUSEPORT`, so the kernel spreads clients over the
/// shards), the relayed sockets of its clients' allocations and its own engine, driven by epoll with
/// recvmmsg/sendmmsg batches. Relaying copies nothing and allocates nothing: a datagram is received behind
/// enough headroom for the ChannelData or Data indication header, which is written in place, and sent from
/// where it landed. Everything but `execute` runs on the shard's thread, so nothing needs a lock.
final class UDPShard: @unchecked Sendable {
    /// Datagrams per recvmmsg and room for sends per sendmmsg round.
    private static let receiveBatch = 32
    private static let sendBatch = 64
    /// Bytes in front of every payload: a Data indication header (48) fits.
    private static let headroom = 64
    /// The largest datagram relayed; anything longer is dropped.
    private static let payloadCapacity = 2048
    /// One buffer: headroom, payload, padding to a multiple of 4.
    private static let slotSize = headroom + payloadCapacity + 4
    /// Reads of one socket before the others get their turn.
    private static let readRounds = 8

    private static let wakeToken: UInt64 = 1 << 62
    private static let listenerTag: UInt64 = 1 << 63

    var engine: TURNEngine
    private let relaySettings: RelaySettings
    private let reservations: RelayReservations
    private let hairpin: HairpinRegistry
    private let logger: Logger
    private let name: String

    private let epoll: Int32
    private let wake: Int32
    private let tasks = Mutex<[@Sendable () -> Void]>([])
    private var thread: pthread_t?
    private var running = true

    private struct Listener {
        let fd: Int32
        let local: STUNAddress
    }
    private var listeners: [Listener] = []
    /// Relayed sockets by `RelayID`; freed slots are reused, with a new generation in the epoll token.
    private var relays: [UDPRelay?] = []
    private var freeRelaySlots: [UInt32] = []
    private var generation: UInt32 = 0

    /// Received datagrams, `receiveBatch` slots; `scratch` has a slot per pending send for data that must be
    /// copied (from another thread, or needing more headroom than it arrived with).
    private let received: OpaquePointer
    private let receiveMemory: UnsafeMutableRawPointer
    private let outbox: OpaquePointer
    private let scratch: UnsafeMutableRawPointer
    private var outboxSockets: [Int32]
    private var outboxCount = 0

    /// Monotonic seconds at the latest wake-up.
    private var now: Int64 = TURNClock.monotonicSeconds
    private var indicationIDs = IndicationIDs()
    /// Packets handed from one of our allocations to another in process; datagrams dropped on a full socket.
    private var hairpinPackets = 0
    private var droppedSends = 0

    init(
        name: String, engine: TURNEngine, relaySettings: RelaySettings, reservations: RelayReservations,
        hairpin: HairpinRegistry, logger: Logger
    ) throws {
        self.name = name
        self.engine = engine
        self.relaySettings = relaySettings
        self.reservations = reservations
        self.hairpin = hairpin
        self.logger = logger
        epoll = cm_epoll_create()
        wake = cm_eventfd()
        guard epoll >= 0, wake >= 0,
            let received = cm_datagrams_create(UInt32(Self.receiveBatch)),
            let outbox = cm_datagrams_create(UInt32(Self.sendBatch))
        else { throw TURNServerError.system("epoll, eventfd or batch buffers", errno) }
        self.received = received
        self.outbox = outbox
        receiveMemory = .allocate(byteCount: Self.receiveBatch * Self.slotSize, alignment: 16)
        scratch = .allocate(byteCount: Self.sendBatch * Self.slotSize, alignment: 16)
        outboxSockets = Array(repeating: -1, count: Self.sendBatch)
        for index in 0..<Self.receiveBatch {
            cm_datagrams_set_buffer(
                received, UInt32(index), receiveMemory + index * Self.slotSize + Self.headroom, Self.payloadCapacity)
        }
        try watch(wake, token: Self.wakeToken)
    }

    deinit {
        cm_datagrams_destroy(received)
        cm_datagrams_destroy(outbox)
        receiveMemory.deallocate()
        scratch.deallocate()
        Glibc.close(epoll)
        Glibc.close(wake)
    }

    // MARK: Setup, from the starting thread before `start`

    /// Binds a UDP listener on `address` (port 0: any) with `SO_REUSEPORT`; returns its bound address.
    func addListener(_ address: STUNAddress) throws -> STUNAddress {
        let fd = try openUDPSocket(
            family: address.family,
            options: [
                (SOL_SOCKET, SO_REUSEPORT, 1), (SOL_SOCKET, SO_RCVBUF, 4 << 20), (SOL_SOCKET, SO_SNDBUF, 4 << 20),
            ])
        guard address.withSockaddr({ bind(fd, $0, $1) }) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TURNServerError.system("binding UDP \(address)", error)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let local = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> STUNAddress? in
                getsockname(fd, address, &length) == 0 ? STUNAddress(sockaddr: address) : nil
            }
        }
        guard let local else {
            Glibc.close(fd)
            throw TURNServerError.system("reading the address of UDP \(address)", errno)
        }
        do {
            try watch(fd, token: Self.listenerTag | UInt64(listeners.count))
        } catch {
            Glibc.close(fd)
            throw error
        }
        listeners.append(Listener(fd: fd, local: local))
        return local
    }

    func start() throws {
        let unmanaged = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let shard = Unmanaged<UDPShard>.fromOpaque(argument!).takeRetainedValue()
                shard.run()
                return nil
            }, unmanaged.toOpaque())
        guard result == 0 else {
            unmanaged.release()
            throw TURNServerError.system("starting a UDP thread", result)
        }
        self.thread = thread
    }

    /// Runs `task` on the shard's thread; from any thread.
    func execute(_ task: @escaping @Sendable () -> Void) {
        let wasEmpty = tasks.withLock { tasks in
            tasks.append(task)
            return tasks.count == 1
        }
        if wasEmpty { cm_eventfd_signal(wake) }
    }

    /// Stops the thread after closing every allocation and listener; from any thread but the shard's. A shard
    /// that never started just closes its listeners.
    func stop() {
        guard let thread else {
            closeListeners()
            return
        }
        execute { self.running = false }
        pthread_join(thread, nil)
        self.thread = nil
    }

    private func closeListeners() {
        for listener in listeners { Glibc.close(listener.fd) }
        listeners = []
    }

    // MARK: The loop

    private func run() {
        cm_set_thread_name(name)
        var tokens = [UInt64](repeating: 0, count: 64)
        var nextSweep = TURNClock.monotonicSeconds + 1
        while running {
            let timeout = Int32(max(0, min(1000, (nextSweep - TURNClock.monotonicSeconds) * 1000)))
            let count = cm_epoll_wait(epoll, &tokens, Int32(tokens.count), timeout)
            now = TURNClock.monotonicSeconds
            if count < 0 {
                logger.critical("UDP shard: epoll_wait: \(String(cString: strerror(-count)))")
                break
            }
            for index in 0..<Int(count) {
                let token = tokens[index]
                if token == Self.wakeToken {
                    cm_eventfd_drain(wake)
                    runTasks()
                } else if token & Self.listenerTag != 0 {
                    readClients(listener: Int(token & 0xFFFF_FFFF))
                } else {
                    readPeers(token: token)
                }
            }
            if now >= nextSweep {
                close(engine.sweep(now: now))
                nextSweep = now + 1
            }
        }
        close(engine.removeAll())
        closeListeners()
        if hairpinPackets > 0 { logger.info("relayed \(hairpinPackets) packets in process between our allocations") }
        if droppedSends > 0 { logger.info("UDP: \(droppedSends) datagrams dropped on full socket buffers") }
    }

    private func runTasks() {
        let pending = tasks.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in pending { task() }
        flush()
    }

    // MARK: From clients

    private func readClients(listener index: Int) {
        let listener = listeners[index]
        receive(from: listener.fd) { payload, length, client in
            handleClientDatagram(
                UnsafeMutableRawBufferPointer(start: payload, count: length),
                fiveTuple: FiveTuple(client: client, server: listener.local, transport: .udp), listener: listener)
        }
    }

    /// Reads batches from `fd` until it has no more (or `readRounds` batches), hands each datagram to `handle`
    /// with its source, and sends what they queued after each batch, before the buffers are reused.
    @inline(__always)
    private func receive(from fd: Int32, _ handle: (UnsafeMutableRawPointer, Int, STUNAddress) -> Void) {
        for _ in 0..<Self.readRounds {
            let count = Int(cm_datagrams_receive(fd, received, UInt32(Self.receiveBatch)))
            guard count > 0 else { break }
            for entry in 0..<count {
                let length = cm_datagrams_received_length(received, UInt32(entry))
                guard length >= 0, let source = STUNAddress(sockaddr: cm_datagrams_address(received, UInt32(entry)))
                else { continue }
                handle(receiveMemory + entry * Self.slotSize + Self.headroom, Int(length), source)
            }
            flush()
            if count < Self.receiveBatch { break }
        }
    }

    @inline(__always)
    private func handleClientDatagram(_ bytes: UnsafeMutableRawBufferPointer, fiveTuple: FiveTuple, listener: Listener) {
        guard bytes.count >= 4, let base = bytes.baseAddress else { return }
        let first = UInt16(bigEndian: base.loadUnaligned(as: UInt16.self))
        if first & 0xC000 == 0x4000 {
            // ChannelData, the hot path: a header check, an array lookup, a queued send from where it landed.
            let length = Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            guard length <= bytes.count - 4,
                let target = engine.channelTarget(first, from: fiveTuple, length: length, now: now)
            else { return }
            send(base + 4, length: length, headroom: Self.headroom + 4, to: target.peer, via: relay(target.relay))
            return
        }
        let action = engine.handle(UnsafeRawBufferPointer(bytes), from: fiveTuple, now: now, wallClock: TURNClock.wallSeconds)
        if logger.logLevel <= .trace {
            logger.trace("from \(personal: fiveTuple): \(personal: action)")
        }
        switch action {
        case .drop:
            break
        case .reply(let reply, let closing):
            send(reply, to: fiveTuple.client, from: listener.fd)
            close(closing)
        case .forward(let peer, let relayID, let payload):
            send(
                base + payload.lowerBound, length: payload.count, headroom: Self.headroom + payload.lowerBound,
                to: peer, via: relay(relayID))
        case .allocate(let pending):
            allocate(pending, listener: listener)
        }
    }

    /// Client data to `peer` from `relay`; to one of our own relayed addresses it goes straight to that
    /// allocation's client.
    @inline(__always)
    private func send(
        _ payload: UnsafeMutableRawPointer, length: Int, headroom: Int, to peer: STUNAddress, via relay: UDPRelay
    ) {
        if engine.policy.isOwnHost(peer), let target = hairpin.target(at: peer) {
            if let local = target as? UDPRelay, local.shard === self {
                hairpinPackets += 1
                deliver(payload, length: length, headroom: headroom, from: relay.address, to: local)
            } else {
                target.deliverFromAnotherThread(
                    Array(UnsafeRawBufferPointer(start: payload, count: length)), from: relay.address)
            }
            return
        }
        queue(payload, length: length, to: peer, from: relay.fd)
    }

    /// A response or error to a client, sent at once.
    private func send(_ message: [UInt8], to client: STUNAddress, from fd: Int32) {
        let sent = message.withUnsafeBytes { bytes in
            client.withSockaddr { address, length in
                sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), address, length)
            }
        }
        if sent < 0 { logger.debug("UDP reply to \(personal: client): \(String(cString: strerror(errno)))") }
    }

    // MARK: Allocations

    private func allocate(_ pending: PendingAllocation, listener: Listener) {
        let opened: (relays: [BoundRelay], reservationToken: UInt64?)
        do {
            opened = try relaySettings.open(for: pending, reservations: reservations, now: now)
        } catch {
            logger.warning("could not open a relayed socket: \(error)")
            send(engine.failAllocation(pending), to: pending.fiveTuple.client, from: listener.fd)
            return
        }
        let relays = opened.relays.map { relay in
            (
                address: relay.address,
                relay: register(fd: relay.fd, address: relay.address, fiveTuple: pending.fiveTuple, listener: listener.fd)
            )
        }
        let response = engine.completeAllocation(
            pending, relays: relays, reservationToken: opened.reservationToken, now: now)
        logger.debug(
            "allocation", metadata: ["client": "\(personal: pending.fiveTuple)", "relay": "\(relays.map(\.address))"])
        send(response, to: pending.fiveTuple.client, from: listener.fd)
    }

    private func register(fd: Int32, address: STUNAddress, fiveTuple: FiveTuple, listener: Int32) -> RelayID {
        let slot: UInt32
        if let free = freeRelaySlots.popLast() {
            slot = free
        } else {
            slot = UInt32(relays.count)
            relays.append(nil)
        }
        generation &+= 1
        let relay = UDPRelay(
            fd: fd, address: address, fiveTuple: fiveTuple, listener: listener, shard: self,
            token: UInt64(generation) << 32 | UInt64(slot))
        relays[Int(slot)] = relay
        do {
            try watch(fd, token: relay.token)
        } catch {
            logger.error("UDP relay: \(error)")
        }
        hairpin.register(relay)
        return RelayID(slot)
    }

    @inline(__always)
    private func relay(_ id: RelayID) -> UDPRelay {
        relays[Int(id.rawValue)]!
    }

    /// Closes relayed sockets (after sending what is queued for them).
    private func close(_ ids: [RelayID]) {
        guard !ids.isEmpty else { return }
        flush()
        for id in ids {
            let slot = Int(id.rawValue)
            guard let relay = relays[slot] else { continue }
            hairpin.unregister(relay)
            cm_epoll_unwatch(epoll, relay.fd)
            Glibc.close(relay.fd)
            relays[slot] = nil
            freeRelaySlots.append(id.rawValue)
        }
    }

    // MARK: From peers

    private func readPeers(token: UInt64) {
        let slot = Int(token & 0xFFFF_FFFF)
        guard slot < relays.count, let relay = relays[slot], relay.token == token else { return }
        receive(from: relay.fd) { payload, length, peer in
            deliver(payload, length: length, headroom: Self.headroom, from: peer, to: relay)
        }
    }

    /// Data from `peer` for `relay`'s client, as ChannelData or a Data indication written in front of `payload`
    /// (copied to scratch first when there is not `headroom` enough); the payload's slot has room for padding.
    @inline(__always)
    private func deliver(
        _ payload: UnsafeMutableRawPointer, length: Int, headroom: Int, from peer: STUNAddress, to relay: UDPRelay
    ) {
        guard let delivery = engine.inboundDelivery(from: peer, to: relay.fiveTuple, length: length, now: now)
        else { return }
        switch delivery {
        case .channelData(let number):
            let header = payload - 4
            header.storeBytes(of: ChannelData.header(channel: number, length: length).bigEndian, as: UInt32.self)
            queue(header, length: length + 4, to: relay.fiveTuple.client, from: relay.listener)
        case .dataIndication:
            let headerLength = DataIndication.headerLength(peer: peer)
            let padding = DataIndication.paddingLength(payload: length)
            var payload = payload
            if headroom < headerLength {
                let copy = reserveScratch() + Self.headroom
                copy.copyMemory(from: payload, byteCount: length)
                payload = copy
            }
            let header = payload - headerLength
            DataIndication.writeHeader(to: header, peer: peer, length: length, transactionID: indicationIDs.next())
            (payload + length).initializeMemory(as: UInt8.self, repeating: 0, count: padding)
            queue(header, length: headerLength + length + padding, to: relay.fiveTuple.client, from: relay.listener)
        }
    }

    /// Data from one of our allocations on another thread, for `relay`'s client.
    fileprivate func deliverCopied(_ payload: [UInt8], from source: STUNAddress, to relay: UDPRelay) {
        guard relays[Int(relay.token & 0xFFFF_FFFF)] === relay, payload.count <= Self.payloadCapacity else { return }
        hairpinPackets += 1
        let copy = reserveScratch() + Self.headroom
        payload.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        deliver(copy, length: payload.count, headroom: Self.headroom, from: source, to: relay)
    }

    // MARK: Sending

    /// The scratch slot of the next queued send (flushing first when the outbox is full).
    private func reserveScratch() -> UnsafeMutableRawPointer {
        if outboxCount == Self.sendBatch { flush() }
        return scratch + outboxCount * Self.slotSize
    }

    /// Queues `length` bytes at `bytes` to `destination` from socket `fd`; the bytes must stay put until `flush`.
    @inline(__always)
    private func queue(_ bytes: UnsafeMutableRawPointer, length: Int, to destination: STUNAddress, from fd: Int32) {
        if outboxCount == Self.sendBatch { flush() }
        let entry = UInt32(outboxCount)
        cm_datagrams_set_buffer(outbox, entry, bytes, length)
        cm_datagrams_set_address_length(outbox, entry, destination.write(to: cm_datagrams_address(outbox, entry)))
        outboxSockets[outboxCount] = fd
        outboxCount += 1
    }

    /// Sends everything queued: one sendmmsg per run of datagrams from the same socket. A datagram the kernel
    /// refuses is skipped; what does not fit a full socket buffer is dropped, as a congested link would.
    private func flush() {
        var start = 0
        while start < outboxCount {
            let fd = outboxSockets[start]
            var end = start + 1
            while end < outboxCount && outboxSockets[end] == fd { end += 1 }
            var next = start
            while next < end {
                let sent = Int(cm_datagrams_send(fd, outbox, UInt32(next), UInt32(end - next)))
                if sent > 0 {
                    next += sent
                } else if sent == 0 {
                    droppedSends += end - next
                    break
                } else {
                    next += 1
                }
            }
            start = end
        }
        outboxCount = 0
    }

    // MARK: Sockets

    private func watch(_ fd: Int32, token: UInt64) throws {
        guard cm_epoll_watch(epoll, fd, token) == 0 else {
            throw TURNServerError.system("epoll_ctl", errno)
        }
    }
}

/// A relayed socket of a UDP client's allocation, owned by its shard.
final class UDPRelay: HairpinTarget, @unchecked Sendable {
    let fd: Int32
    /// The relayed address clients are told (and peers send to).
    let address: STUNAddress
    let fiveTuple: FiveTuple
    /// The listener the client reached us on: data to the client leaves from it.
    let listener: Int32
    unowned let shard: UDPShard
    /// Its slot and generation, as epoll reports it.
    let token: UInt64

    init(fd: Int32, address: STUNAddress, fiveTuple: FiveTuple, listener: Int32, shard: UDPShard, token: UInt64) {
        self.fd = fd
        self.address = address
        self.fiveTuple = fiveTuple
        self.listener = listener
        self.shard = shard
        self.token = token
    }

    func deliverFromAnotherThread(_ payload: [UInt8], from source: STUNAddress) {
        shard.execute { self.shard.deliverCopied(payload, from: source, to: self) }
    }
}
