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

/// A TCP or TLS client connection: its frames go to the loop's engine; closing it deletes its allocation.
final class StreamClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let state: LoopState
    private let transport: TURNTransport
    private var fiveTuple: FiveTuple?

    init(state: LoopState, transport: TURNTransport) {
        self.state = state
        self.transport = transport
    }

    func channelActive(context: ChannelHandlerContext) {
        if let local = context.channel.localAddress.flatMap(STUNAddress.init),
            let remote = context.channel.remoteAddress.flatMap(STUNAddress.init)
        {
            fiveTuple = FiveTuple(client: remote, server: local, transport: transport)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let fiveTuple else { return }
        state.handleClientMessage(unwrapInboundIn(data), fiveTuple: fiveTuple, client: context.channel)
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
        if let fiveTuple { state.connectionClosed(fiveTuple) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.logger.debug("closing \(transport) client: \(error)")
        context.close(promise: nil)
    }
}
