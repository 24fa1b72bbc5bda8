import NIOCore

/// The connection to a local service: passes its data to the client connection and holds reads while the
/// client cannot take more. Lives on the client connection's event loop.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let client: ConnectionHandler
    private var context: ChannelHandlerContext?
    private var readPending = false

    init(client: ConnectionHandler) {
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func write(_ data: ByteBuffer) { context?.write(wrapOutboundOut(data), promise: nil) }

    func flush() { context?.flush() }

    /// Shuts down the write side once everything written so far is out, then calls `done`.
    func shutDownOutputAfterWrites(_ done: @escaping () -> Void) {
        guard let context else { return done() }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
            done()
        }
    }

    func close() {
        context?.close(promise: nil)
    }

    func clientWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { client.upstreamReadComplete() }

    func read(context: ChannelHandlerContext) {
        if client.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { client.upstreamWritable() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { client.upstreamInputClosed() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        client.upstreamInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        client.upstreamError(error)
        context.close(promise: nil)
    }
}
