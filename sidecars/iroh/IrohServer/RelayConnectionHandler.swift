import ChatmailSidecar
import IrohCore
import Logging
import NIOCore

/// A relay frame from the transport below: a family-L stream frame, or one WebSocket message (either family).
enum RelayInbound {
    case legacyFrame(type: UInt8, payload: ByteBuffer)
    case message(ByteBuffer)
}

/// Sent up the pipeline by `RateLimitHandler` the first time a client exceeds its byte rate.
struct RateLimitedEvent {}

/// One relay connection after the upgrade: runs its `RelaySession`, registers it with the hub once
/// authenticated, forwards packets, answers and sends pings, and bounds what is queued towards the client.
final class RelayConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = RelayInbound
    typealias OutboundOut = ByteBuffer

    /// The server's ping interval (plus 1–5 s of jitter), reset by every frame received.
    static let pingInterval = TimeAmount.seconds(15)

    let family: RelayFamily
    private let hub: RelayHub
    private let streamHeader: Bool
    private var session: RelaySession
    private var context: ChannelHandlerContext?
    private var logger: Logger
    /// Encoded frames waiting for the channel to be writable, by priority (notes §3.5): pings, pongs and the
    /// handshake first, then forwarded packets, then notices (EndpointGone, Status). The last two are bounded.
    private var urgent = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var packets = CircularBuffer<ByteBuffer>(initialCapacity: 16)
    private var notices = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var hasUnflushedWrites = false
    private var closing = false
    private var pings: PingTracker
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var pingTask: Scheduled<Void>?
    private var pingTimeoutTask: Scheduled<Void>?
    private var writeTimeoutTask: Scheduled<Void>?
    private var rateLimitNoticeSent = false

    init(family: RelayFamily, streamHeader: Bool, hub: RelayHub, logger: Logger) {
        self.family = family
        self.streamHeader = streamHeader
        self.hub = hub
        self.logger = logger
        var challenge = [UInt8](repeating: 0, count: RelayProtocol.challengeLength)
        var random = SystemRandomNumberGenerator()
        for index in challenge.indices { challenge[index] = random.next() }
        self.session = RelaySession(family: family, challenge: challenge)
        if case .legacy = family {
            pings = PingTracker(timeout: .fixed(5))
        } else {
            pings = PingTracker(timeout: .roundTrips)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastRead = context.eventLoop.now
        if let greeting = session.greeting {
            _ = deliver(greeting)
            flushIfNeeded()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pingTask?.cancel()
        pingTimeoutTask?.cancel()
        writeTimeoutTask?.cancel()
        if let key = session.key { hub.unregister(self, key: key) }
        session = RelaySession(family: family, challenge: [])  // forgets the key: unregistered exactly once
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        lastRead = context.eventLoop.now
        do {
            let action: RelaySession.Action
            switch unwrapInboundIn(data) {
            case .legacyFrame(let type, let payload): action = try session.receive(legacyType: type, payload: payload)
            case .message(let message): action = try session.receive(message: message)
            }
            try perform(action, context: context)
        } catch {
            refuse(error)
        }
    }

    private func perform(_ action: RelaySession.Action, context: ChannelHandlerContext) throws(RelayError) {
        switch action {
        case .none:
            break
        case .authenticated(let key):
            logger[metadataKey: "endpoint"] = "\(personal: key)"
            logger.debug("authenticated", metadata: ["family": "\(family)"])
            if case .relay = family { _ = deliver(.confirmAuth) }
            hub.register(self, key: key)
            if let deadline = try? context.pipeline.syncOperations.handler(type: HandshakeDeadlineHandler.self) {
                deadline.cancel()
                context.pipeline.syncOperations.removeHandler(deadline, promise: nil)
            }
            schedulePing(after: Self.pingInterval)
        case .forward(let destination, let payload):
            guard payload.byteCount <= hub.limits.maxPacketSize else { throw .frameTooLarge(payload.byteCount) }
            hub.forward(payload, from: session.key!, to: destination, family: family)
        case .pong(let data):
            // Answered at once, ahead of whatever the read burst forwards.
            _ = deliver(.pong(data))
            flushIfNeeded()
        case .pongReceived(let data):
            if pings.received(pong: data, now: Self.seconds(context.eventLoop.now)) {
                pingTimeoutTask?.cancel()
                pingTimeoutTask = nil
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        hub.flushAll()
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimeoutTask?.cancel()
            writeTimeoutTask = nil
            hasUnflushedWrites = true
            flushIfNeeded()
        } else if writeTimeoutTask == nil {
            let timeout = TimeAmount.nanoseconds(Int64(hub.limits.writeTimeout * 1e9))
            writeTimeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                hub.countLimitClosure()
                close(reason: "write timeout: the client stopped reading")
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RateLimitedEvent { hub.countRateLimited() }
        if event is RateLimitedEvent, !rateLimitNoticeSent, session.key != nil, family == .relay(.v2) {
            rateLimitNoticeSent = true
            _ = deliver(.status(.rateLimited))
            flushIfNeeded()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is IOError {
            close(reason: "\(error)")
        } else {
            refuse(error as? RelayError ?? .malformedFrame("\(error)"))
        }
    }

    /// Queues `message` for the client; false when it was dropped because its queue is full.
    func deliver(_ message: ServerMessage) -> Bool {
        guard let context, !closing else { return false }
        let limit = hub.limits.queueSize
        switch message {
        case .packet: if packets.count >= limit { return false }
        case .gone, .status: if notices.count >= limit { return false }
        case .challenge, .confirmAuth, .denyAuth, .ping, .pong: break
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        guard session.encode(message, streamHeader: streamHeader, into: &buffer) else { return true }
        switch message {
        case .packet: packets.append(buffer)
        case .gone, .status: notices.append(buffer)
        case .challenge, .confirmAuth, .denyAuth, .ping, .pong: urgent.append(buffer)
        }
        if !hasUnflushedWrites {
            hasUnflushedWrites = true
            hub.needsFlush(self)
        }
        return true
    }

    /// Writes what is queued, by priority, while the channel is writable; then flushes.
    func flushIfNeeded() {
        guard hasUnflushedWrites, let context else { return }
        hasUnflushedWrites = false
        var wrote = false
        while context.channel.isWritable,
            let next = urgent.popFirst() ?? packets.popFirst() ?? notices.popFirst()
        {
            context.write(wrapOutboundOut(next), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
    }

    /// Closes the connection after what is already queued.
    func close(reason: String) {
        guard let context, !closing else { return }
        logger.debug("closing", metadata: ["reason": "\(reason)"])
        closing = true
        flushIfNeeded()
        context.close(promise: nil)
    }

    /// Closes the connection for a protocol error; a family-W client whose handshake failed is told why first.
    private func refuse(_ error: RelayError) {
        guard let context, !closing else { return }
        hub.countProtocolError()
        logger.info("closing relay connection", metadata: ["error": "\(error)"])
        closing = true
        hasUnflushedWrites = false
        guard case .relay = family, session.key == nil, case .authenticationFailed = error else {
            context.close(promise: nil)
            return
        }
        var denial = context.channel.allocator.buffer(capacity: 32)
        session.encode(.denyAuth(RelaySession.denial(for: error)), streamHeader: false, into: &denial)
        context.writeAndFlush(wrapOutboundOut(denial)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Another connection claims this one's key (family L, where that proves nothing): ping at once, and close
    /// this one if the pong does not come within the ping timeout, so a client that reconnected takes over.
    func checkAlive() {
        guard context != nil, !closing, pings.outstanding == nil else { return }
        pingTask?.cancel()
        sendPing(now: true)
    }

    private func schedulePing(after delay: TimeAmount) {
        guard let context else { return }
        pingTask = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in sendPing() }
    }

    private func sendPing(now sendNow: Bool = false) {
        guard let context, !closing else { return }
        let now = context.eventLoop.now
        let idle = now - lastRead
        let interval = Self.pingInterval + .milliseconds(Int64.random(in: 1000...5000))
        guard idle >= Self.pingInterval || sendNow else {
            schedulePing(after: interval - idle)
            return
        }
        let data = UInt64.random(in: .min ... .max)
        let deadline = pings.sent(data, now: Self.seconds(now))
        _ = deliver(.ping(data))
        flushIfNeeded()
        let timeout = TimeAmount.nanoseconds(Int64((deadline - Self.seconds(now)) * 1e9))
        pingTimeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            if pings.expired(now: Self.seconds(context.eventLoop.now) + 0.001) {
                hub.countLimitClosure()
                close(reason: "no pong in time")
            }
        }
        schedulePing(after: interval)
    }

    static func seconds(_ deadline: NIODeadline) -> Double {
        Double(deadline.uptimeNanoseconds) / 1e9
    }
}
