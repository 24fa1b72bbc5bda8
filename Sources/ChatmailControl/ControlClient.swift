import NIOCore
import NIOPosix

/// The client end of the control channel, for the CLI (path socket) and for children (the
/// inherited fd named by `CHATMAIL_CONTROL_FD`). Requests are answered by id; pushes arrive on
/// `events`, which finishes when the supervisor goes away.
public final class ControlClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    private let channel: any Channel
    private let handler: NIOLoopBound<Handler>
    public let events: AsyncStream<ControlEvent>

    private init(channel: any Channel, handler: NIOLoopBound<Handler>, events: AsyncStream<ControlEvent>) {
        self.channel = channel
        self.handler = handler
        self.events = events
    }

    /// Connects to the supervisor's path socket.
    public static func connect(
        path: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ControlClient {
        try await make(group: group) { try await $0.connect(unixDomainSocketPath: path).get() }
    }

    /// Adopts an inherited, connected socket (a child's `CHATMAIL_CONTROL_FD`).
    public static func adopt(
        descriptor: CInt, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ControlClient {
        try await make(group: group) { try await $0.withConnectedSocket(descriptor).get() }
    }

    private static func make(
        group: any EventLoopGroup, _ open: (ClientBootstrap) async throws -> any Channel
    ) async throws -> ControlClient {
        let (events, continuation) = AsyncStream.makeStream(of: ControlEvent.self)
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder()))
                try channel.pipeline.syncOperations.addHandler(Handler(events: continuation))
            }
        }
        let channel = try await open(bootstrap)
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: Handler.self), eventLoop: channel.eventLoop)
        }.get()
        return ControlClient(channel: channel, handler: handler, events: events)
    }

    /// Sends `command` and waits for its answer, at most `timeout`.
    public func request(_ command: ControlCommand, timeout: TimeAmount = .seconds(10)) async throws -> ControlResponse {
        let promise = channel.eventLoop.makePromise(of: ControlResponse.self)
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            handler.value.send(command, promise: promise, channel: channel, timeout: timeout)
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private var nextID = 1
        private var pending: [Int: (promise: EventLoopPromise<ControlResponse>, timer: Scheduled<Void>)] = [:]
        private var closed = false
        private let events: AsyncStream<ControlEvent>.Continuation

        init(events: AsyncStream<ControlEvent>.Continuation) {
            self.events = events
        }

        func send(
            _ command: ControlCommand, promise: EventLoopPromise<ControlResponse>, channel: any Channel,
            timeout: TimeAmount
        ) {
            guard !closed else { return promise.fail(Failure(description: "the supervisor closed the connection")) }
            let id = nextID
            nextID += 1
            let loop = channel.eventLoop.assumeIsolated()
            let timer = loop.scheduleTask(in: timeout) { [weak self] () -> Void in
                self?.pending.removeValue(forKey: id)?.promise.fail(Failure(description: "no answer within \(timeout)"))
            }
            pending[id] = (promise, timer)
            channel.writeLine(ControlCodec.encode(ControlRequest(id: id, command: command))).assumeIsolated()
                .whenFailure { [weak self] error in self?.finish(id, .failure(error)) }
        }

        private func finish(_ id: Int, _ result: Result<ControlResponse, any Error>) {
            guard let entry = pending.removeValue(forKey: id) else { return }
            entry.timer.cancel()
            entry.promise.completeWith(result)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let line = unwrapInboundIn(data)
            switch try? ControlCodec.decodeInbound(line.readableBytesView) {
            case .response(let response): finish(response.id, .success(response))
            case .event(let event): events.yield(event)
            case nil: context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed = true
            for id in pending.keys {
                finish(id, .failure(Failure(description: "the supervisor closed the connection")))
            }
            events.finish()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
