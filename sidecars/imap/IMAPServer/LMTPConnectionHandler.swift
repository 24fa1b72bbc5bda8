import IMAPCore
import NIOCore

/// One LMTP connection from the MTA. Deliveries run on the event loop: a reply leaves only
/// after the store has committed.
final class LMTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: LMTPSession
    private var closing = false

    init(settings: LMTPSession.Settings, backend: any LMTPBackend) {
        session = LMTPSession(settings: settings, backend: backend)
    }

    func channelActive(context: ChannelHandlerContext) {
        write(session.greeting, context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let output = session.receive(unwrapInboundIn(data).readableBytesView)
        let future = write(output.replies.joined(), context: context)
        if output.close {
            closing = true
            if let future {
                future.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    @discardableResult
    private func write(_ text: String, context: ChannelHandlerContext) -> EventLoopFuture<Void>? {
        guard !text.isEmpty else { return nil }
        return context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)))
    }
}
