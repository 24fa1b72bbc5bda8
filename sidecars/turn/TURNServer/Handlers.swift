import NIOCore
import TURNCore

/// A relayed socket of a TCP or TLS client's allocation: data from peers, to the client.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let state: LoopState
    private let fiveTuple: FiveTuple
    private let client: any Channel
    private var delivered = false

    init(state: LoopState, fiveTuple: FiveTuple, client: any Channel) {
        self.state = state
        self.fiveTuple = fiveTuple
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let peer = STUNAddress(envelope.remoteAddress) else { return }
        state.handlePeerData(envelope.data, from: peer, to: fiveTuple, client: client)
        delivered = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if delivered {
            delivered = false
            client.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable from a peer shows up here; the allocation goes on.
    }
}

/// Frames a TCP or TLS byte stream into STUN messages and ChannelData messages (RFC 8656 §11.5).
struct TURNFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct NotTURN: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let word = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard let length = TURNStreamFraming.frameLength(first4: word) else { throw NotTURN() }
        guard let frame = buffer.readSlice(length: length) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// How long a TCP or TLS client may take for each step before it is closed.
struct StreamDeadlines: Sendable {
    /// From connecting to the first complete message (so the TLS handshake too).
    var firstMessage: TimeAmount
    /// Without an allocation.
    var unallocated: TimeAmount
    /// With a connection that stays unwritable (a client reading nothing).
    var unwritable: TimeAmount
    /// Without a message from the client.
    var idle: TimeAmount
}

/// A TCP or TLS client connection: its frames go to the loop's engine; closing it deletes its allocation.
/// Deadlines: the first message (and with it the TLS handshake), an allocation, and a client that reads. While
/// the connection is not writable, the `BackPressureHandler` before this one holds reads (its answers would pile
/// up), and relayed
/// data for it is dropped (`LoopState.handlePeerData`).
final class StreamClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let state: LoopState
    private let transport: TURNTransport
    private let deadlines: StreamDeadlines
    private var fiveTuple: FiveTuple?
    /// Until the first message.
    private var firstMessage: Scheduled<Void>?
    /// The next look for an allocation.
    private var allocationCheck: Scheduled<Void>?
    /// Since the connection became unwritable.
    private var stalled: Scheduled<Void>?

    init(state: LoopState, transport: TURNTransport, deadlines: StreamDeadlines) {
        self.state = state
        self.transport = transport
        self.deadlines = deadlines
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard fiveTuple == nil else { return }
        if let local = context.channel.localAddress.flatMap(STUNAddress.init),
            let remote = context.channel.remoteAddress.flatMap(STUNAddress.init)
        {
            fiveTuple = FiveTuple(client: remote, server: local, transport: transport)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        firstMessage = context.eventLoop.scheduleTask(in: deadlines.firstMessage) {
            let (handler, context) = loopBound.value
            handler.state.logger.debug("closing \(handler.transport) client: no message in time")
            context.close(promise: nil)
        }
        scheduleAllocationCheck(context: context)
    }

    /// One deadline from now, closes the connection if it has no allocation, else looks again one deadline
    /// later (so a client that deleted its allocation goes too).
    private func scheduleAllocationCheck(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        allocationCheck = context.eventLoop.scheduleTask(in: deadlines.unallocated) {
            let (handler, context) = loopBound.value
            guard let fiveTuple = handler.fiveTuple, handler.state.engine.allocation(fiveTuple) != nil else {
                handler.state.logger.debug("closing \(handler.transport) client: no allocation in time")
                return context.close(promise: nil)
            }
            handler.scheduleAllocationCheck(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let fiveTuple else { return }
        if let scheduled = firstMessage {
            scheduled.cancel()
            firstMessage = nil
        }
        state.handleClientMessage(unwrapInboundIn(data), fiveTuple: fiveTuple, client: context.channel)
    }

    /// Reads wait in the `BackPressureHandler` before this one; a connection that stays unwritable is closed.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stalled?.cancel()
            stalled = nil
        } else if stalled == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            stalled = context.eventLoop.scheduleTask(in: deadlines.unwritable) {
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        state.flushRelays()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        firstMessage?.cancel()
        allocationCheck?.cancel()
        stalled?.cancel()
        if let fiveTuple { state.connectionClosed(fiveTuple) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.logger.debug("closing \(transport) client: \(error)")
        context.close(promise: nil)
    }
}
