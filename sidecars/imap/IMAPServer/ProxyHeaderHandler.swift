import ChatmailProxyProtocol
import NIOCore

/// The first handler on a listener behind the HTTPS front: reads the PROXY protocol v2 header the front sends
/// (`ProxyHeader.Reader`) within `timeout`, then adds the connection's real handlers after itself, made for the
/// client's address the header names, tells them the channel is active, and leaves, passing the bytes after the
/// header up. A connection without a valid header is closed. Only for loopback listeners: the header is trusted.
final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    /// Adds the handlers that serve the connection at the end of the pipeline, for this client address
    /// (nil for a LOCAL header: the peer's own).
    private let serve: (any Channel, SocketAddress?) throws -> Void
    private var reader = ProxyHeader.Reader()
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var done = false

    init(timeout: TimeAmount, serve: @escaping (any Channel, SocketAddress?) throws -> Void) {
        self.timeout = timeout
        self.serve = serve
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    /// The handlers after this one are added once the header is read; they get `channelActive` then.
    func channelActive(context: ChannelHandlerContext) {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        let result = bytes.withUnsafeReadableBytes { reader.feed($0) }
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        switch result {
        case .needMore:
            return
        case .malformed:
            done = true
            context.close(promise: nil)
        case .header(let header, let length):
            done = true
            deadline?.cancel()
            buffered!.moveReaderIndex(forwardBy: length)
            let peer = header.source.flatMap { try? SocketAddress(ipAddress: $0.ipText, port: Int($0.port)) }
            do {
                try serve(context.channel, peer ?? context.remoteAddress)
            } catch {
                context.close(promise: nil)
                return
            }
            context.fireChannelActive()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let bytes = buffered.take(), bytes.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.leavePipeline(removalToken: removalToken)
    }
}
