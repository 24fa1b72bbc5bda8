import IrohCore
import NIOCore
import NIOWebSocket

/// Family L over the raw `iroh derp http` stream: `u8 type | u32 length | payload` frames.
struct LegacyStreamDecoder: ByteToMessageDecoder {
    typealias InboundOut = RelayInbound
    let maxFrameSize: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try LegacyProtocol.readStreamFrame(from: &buffer, maxFrameSize: maxFrameSize) else {
            return .needMoreData
        }
        context.fireChannelRead(wrapInboundOut(.legacyFrame(type: frame.type, payload: frame.payload)))
        return .continue
    }
}

/// Relay frames over WebSocket (both families): each complete binary message goes up as one frame, and each
/// frame written down goes out as one unmasked binary message. Answers WebSocket pings and the close handshake;
/// text messages are skipped, as iroh does.
final class WebSocketMessageHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = RelayInbound
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    enum MessageError: Error { case tooLarge, unexpectedContinuation }

    private let maxMessageSize: Int
    /// The binary message being reassembled from fragments, or nil.
    private var partial: ByteBuffer?
    /// Whether continuation frames belong to a skipped text message.
    private var skippingText = false
    private var closeSent = false

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            guard partial == nil, !skippingText else { return fail(context, .unexpectedContinuation) }
            if frame.fin {
                context.fireChannelRead(wrapInboundOut(.message(Self.unmasked(frame))))
            } else {
                partial = Self.unmasked(frame)
            }
        case .continuation:
            if skippingText {
                skippingText = !frame.fin
                return
            }
            guard var message = partial else { return fail(context, .unexpectedContinuation) }
            var data = Self.unmasked(frame)
            guard message.readableBytes + data.readableBytes <= maxMessageSize else {
                return fail(context, .tooLarge)
            }
            message.writeBuffer(&data)
            if frame.fin {
                partial = nil
                context.fireChannelRead(wrapInboundOut(.message(message)))
            } else {
                partial = message
            }
        case .text:
            skippingText = !frame.fin
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: Self.unmasked(frame))
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            guard !closeSent else {
                context.close(promise: nil)
                return
            }
            closeSent = true
            var status = Self.unmasked(frame)
            let code = status.readSlice(length: min(2, status.readableBytes)) ?? ByteBuffer()
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            fail(context, .unexpectedContinuation)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: unwrapOutboundIn(data))
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    /// The frame's payload without its mask. NIO's `unmaskedData` XORs byte by byte, which was the relay's main
    /// cost for family W; this XORs eight bytes at a time.
    static func unmasked(_ frame: WebSocketFrame) -> ByteBuffer {
        var data = frame.data
        guard let key = frame.maskKey else { return data }
        let mask = Array(key)
        let pattern = (mask + mask).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        data.withUnsafeMutableReadableBytes { bytes in
            var index = 0
            while index + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ pattern
                bytes.storeBytes(of: word, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < bytes.count {
                bytes[index] ^= mask[index % 4]
                index += 1
            }
        }
        return data
    }

    private func fail(_ context: ChannelHandlerContext, _ error: MessageError) {
        context.fireErrorCaught(error)
    }
}

/// Bounds the bytes a client may send: a token bucket on bytes read, which defers reading (pushing back on TCP)
/// while in debt. Tells the pipeline once, the first time the client is throttled.
final class RateLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var bucket: TokenBucket
    private var resume: Scheduled<Void>?
    private var notified = false

    init(rate: Int, burst: Int) {
        bucket = TokenBucket(rate: rate, burst: burst, now: 0)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        let delay = bucket.consume(bytes, now: RelayConnectionHandler.seconds(context.eventLoop.now))
        context.fireChannelRead(data)
        if delay > 0 && !notified {
            notified = true
            context.fireUserInboundEventTriggered(RateLimitedEvent())
        }
    }

    func read(context: ChannelHandlerContext) {
        guard resume == nil else { return }
        let delay = bucket.delay(now: RelayConnectionHandler.seconds(context.eventLoop.now))
        guard delay > 0 else { return context.read() }
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [self] in
            resume = nil
            read(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
    }
}

/// Closes a connection that has not finished the relay handshake (HTTP request, upgrade, authentication) by the
/// deadline; the relay connection handler cancels it once authenticated.
final class HandshakeDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let onExpiry: () -> Void
    private var task: Scheduled<Void>?
    private var cancelled = false

    init(timeout: TimeAmount, onExpiry: @escaping () -> Void) {
        self.timeout = timeout
        self.onExpiry = onExpiry
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        task?.cancel()
    }

    func cancel() {
        cancelled = true
        task?.cancel()
        task = nil
    }

    private func start(_ context: ChannelHandlerContext) {
        guard task == nil, !cancelled else { return }
        task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !cancelled else { return }
            onExpiry()
            context.close(promise: nil)
        }
    }
}
