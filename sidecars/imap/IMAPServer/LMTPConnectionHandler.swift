import IMAPCore
import NIOCore
import NIOPosix

/// One LMTP connection from the MTA. The session runs on the thread pool when there is one
/// (deliveries wait for the disk), and a reply leaves only after the store has committed.
final class LMTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: LMTPSession
    private let threadPool: NIOThreadPool?
    private var closing = false
    private var busy = false
    private var readPending = false
    private var pending: [UInt8] = []

    init(settings: LMTPSession.Settings, backend: any LMTPBackend, threadPool: NIOThreadPool?) {
        session = LMTPSession(settings: settings, backend: backend)
        self.threadPool = threadPool
    }

    func channelActive(context: ChannelHandlerContext) {
        write(session.greeting, context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        pending += unwrapInboundIn(data).readableBytesView
        if !busy { run(context: context) }
    }

    /// Reads wait while the session works.
    func read(context: ChannelHandlerContext) {
        if busy { readPending = true } else { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func run(context: ChannelHandlerContext) {
        let input = pending
        pending = []
        guard let threadPool else {
            finish(session.receive(input), context: context)
            return
        }
        busy = true
        let session = self.session
        threadPool.runIfActive(eventLoop: context.eventLoop) { () -> LMTPStep in
            var session = session
            let output = session.receive(input)
            return LMTPStep(session: session, output: output)
        }.assumeIsolated().whenComplete { [self] result in
            busy = false
            switch result {
            case .success(let step):
                self.session = step.session
                finish(step.output, context: context)
            case .failure:
                closing = true
                context.close(promise: nil)
            }
            guard !closing else { return }
            if !pending.isEmpty {
                run(context: context)
            } else if readPending {
                readPending = false
                context.read()
            }
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
        return context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)))
    }
}

/// An LMTP session after one step, carried back from the thread pool.
struct LMTPStep: Sendable {
    var session: LMTPSession
    var output: LMTPSession.Output
}
