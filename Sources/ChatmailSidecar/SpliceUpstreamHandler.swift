import NIOCore

/// The client side of a spliced connection, as its upstream connection sees it: Shadowsocks' client connection
/// and the HTTPS front's passed connections. All calls come on the client connection's event loop.
public protocol SpliceClient: AnyObject {
    /// The client connection can take more data; while it cannot, the upstream is not read.
    var isWritable: Bool { get }
    func upstreamRead(_ bytes: ByteBuffer)
    func upstreamReadComplete()
    /// The upstream can take data again (a read held back for it may go on).
    func upstreamWritable()
    /// The upstream finished sending, in order: pass its FIN on after everything queued for the client
    /// (`shutDownOutputAfterWrites`), then tell the upstream handler (`clientOutputFinished`). Called once.
    func upstreamInputClosed()
    /// The splice is over: both directions finished in order (no `error`), or the upstream connection failed (a
    /// reset). Close both sides. Called once.
    func spliceEnded(error: (any Error)?)
}

extension ChannelHandlerContext {
    /// Shuts down the write side once everything written so far is out (a FIN after the data), then calls `done`.
    public func shutDownOutputAfterWrites(_ done: @escaping () -> Void) {
        let written = eventLoop.makePromise(of: Void.self)
        writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.close(mode: .output, promise: nil)
            done()
        }
    }
}

/// The upstream end of a spliced connection: passes what it reads to the client side, holds reads while the
/// client cannot take more, reports writability, and ends the splice once both directions finished (each side's
/// data written, then its FIN) or the upstream failed. Lives on the client connection's event loop; open the
/// upstream channel with `allowRemoteHalfClosure` for half-close to pass through.
///
/// An upstream that closes without an error ends like a FIN, even without an input-closed event: NIO closes a
/// socket whose output is already shut down in full when its EOF comes, which is the normal end of a half-close
/// in which the client finished first.
public final class SpliceUpstreamHandler<Client: SpliceClient>: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let client: Client
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var inputClosed = false
    private var error: (any Error)?
    /// The write side towards the upstream / towards the client is shut down (or its connection gone).
    private var outputDone = false
    private var clientOutputDone = false
    private var ended = false

    public init(client: Client) { self.client = client }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// The upstream can take more data.
    public var isWritable: Bool { context?.channel.isWritable ?? false }

    public func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }

    public func flush() { context?.flush() }

    /// The client sent its FIN: passes it on once everything written so far is out. `thenClose`: the client
    /// connection is gone, so the upstream connection closes after that.
    public func finishOutput(thenClose: Bool = false) {
        guard let context else { return outputFinished() }
        context.shutDownOutputAfterWrites {
            if thenClose { context.close(promise: nil) }
            self.outputFinished()
        }
    }

    /// The client side passed the upstream's FIN on (see `SpliceClient.upstreamInputClosed`).
    public func clientOutputFinished() {
        clientOutputDone = true
        endIfDone()
    }

    public func close() { context?.close(promise: nil) }

    /// The client can take data again: a read held back goes on.
    public func clientWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) { client.upstreamRead(unwrapInboundIn(data)) }

    public func channelReadComplete(context: ChannelHandlerContext) { client.upstreamReadComplete() }

    public func read(context: ChannelHandlerContext) {
        if client.isWritable { context.read() } else { readPending = true }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { client.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { endOfInput() }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        guard error == nil else { return end() }
        endOfInput()
        outputFinished()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    private func outputFinished() {
        outputDone = true
        endIfDone()
    }

    private func endIfDone() {
        if outputDone && clientOutputDone { end() }
    }

    private func end() {
        guard !ended else { return }
        ended = true
        client.spliceEnded(error: error)
    }

    private func endOfInput() {
        guard !inputClosed else { return }
        inputClosed = true
        client.upstreamInputClosed()
    }
}
