import IMAPCore
import NIOCore
import NIOPosix
import Synchronization

/// One LMTP connection from the MTA. The session runs on the thread pool when there is one
/// (deliveries wait for the disk), and a reply leaves only after the store has committed.
///
/// Output is bounded as for IMAP: input waits (and the socket is not read) while the channel is
/// not writable, and a client that leaves replies unread for `sendTimeout` is dropped.
final class LMTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Nil while the session is on the thread pool (so that it is moved there, not copied with
    /// the message it holds).
    private var session: LMTPSession?
    private let threadPool: NIOThreadPool?
    private let sendTimeout: TimeAmount
    private var closing = false
    private var readPending = false
    private var pending: [UInt8] = []
    private var sendDeadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(settings: LMTPSession.Settings, backend: any LMTPBackend, threadPool: NIOThreadPool?, sendTimeout: TimeAmount)
    {
        session = LMTPSession(settings: settings, backend: backend)
        self.threadPool = threadPool
        self.sendTimeout = sendTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        sendDeadline?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        if let session { write(session.greeting, context: context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        pending += unwrapInboundIn(data).readableBytesView
        run(context: context)
    }

    /// Whether input may be worked on: the session is here and the client reads its replies.
    private func canRun(_ context: ChannelHandlerContext) -> Bool {
        !closing && session != nil && context.channel.isWritable
    }

    /// Reads wait while the session works or replies wait for the client.
    func read(context: ChannelHandlerContext) {
        if canRun(context) { context.read() } else { readPending = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        watchWritability(context: context)
        run(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closing = true
        context.close(promise: nil)
    }

    private func run(context: ChannelHandlerContext) {
        guard canRun(context) else { return }
        guard !pending.isEmpty else {
            if readPending {
                readPending = false
                context.read()
            }
            return
        }
        let input = pending
        pending = []
        guard let threadPool else {
            finish(session!.receive(input), context: context)
            return run(context: context)
        }
        let handoff = Handoff(self.session.take()!)
        threadPool.runIfActive(eventLoop: context.eventLoop) { () -> LMTPStep in
            var session = handoff.take()!
            let output = session.receive(input)
            return LMTPStep(session: session, output: output)
        }.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let step):
                self.session = step.session
                finish(step.output, context: context)
            case .failure:
                closing = true
                context.close(promise: nil)
            }
            run(context: context)
        }
    }

    private func finish(_ output: LMTPSession.Output, context: ChannelHandlerContext) {
        let future = write(output.replies.joined(), context: context)
        guard output.close else { return }
        closing = true
        if let future {
            future.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    @discardableResult
    private func write(_ text: String, context: ChannelHandlerContext) -> EventLoopFuture<Void>? {
        guard !text.isEmpty else { return nil }
        let future = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)))
        watchWritability(context: context)
        return future
    }

    /// Starts the send deadline while the channel is not writable, and stops it when it is.
    private func watchWritability(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            sendDeadline?.cancel()
            sendDeadline = nil
        } else if sendDeadline == nil {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            sendDeadline = context.eventLoop.scheduleTask(in: sendTimeout) { bound.value.sendDeadlinePassed() }
        }
    }

    private func sendDeadlinePassed() {
        sendDeadline = nil
        closing = true
        context?.close(promise: nil)
    }
}

/// An LMTP session after one step, carried back from the thread pool.
struct LMTPStep: Sendable {
    var session: LMTPSession
    var output: LMTPSession.Output
}

/// Moves a value to another thread as the only reference, so that mutating it there copies
/// nothing (a captured constant would keep a second reference to its buffers).
final class Handoff<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    init(_ value: Value) {
        self.value = Mutex(value)
    }

    func take() -> Value? { value.withLock { $0.take() } }
}
