import ChatmailSidecar
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Reads of up to 256 KiB: bulk transfers then cost fewer system calls and fewer buffers per byte.
let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 16384, maximum: 1 << 18)

/// A listening Shadowsocks server: a listener per event loop on one port (SO_REUSEPORT), so the kernel spreads
/// clients over the loops and each connection, with its upstream, stays on the loop that accepted it.
public final class ShadowsocksServer: Sendable {
    private let state: ServerState
    /// The listening channels, one per event loop.
    public let channels: [any Channel]
    /// Saves the salt history every `saltSaveInterval`, on the thread pool.
    private let saving: (task: RepeatedTask, loop: any EventLoop)?

    /// The address it listens on (with the real port when bound to port 0).
    public var localAddress: SocketAddress? { channels.first?.localAddress }

    /// What happened so far.
    public var counters: ShadowsocksCounters { state.counters }

    private init(state: ServerState, channels: [any Channel], group: any EventLoopGroup) {
        self.state = state
        self.channels = channels
        if state.settings.saltFile != nil {
            let loop = group.next()
            let interval = state.settings.saltSaveInterval
            let task = loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
                NIOThreadPool.singleton.runIfActive(eventLoop: loop) { state.saveSalts() }
            }
            saving = (task, loop)
        } else {
            saving = nil
        }
    }

    /// Binds `host:port` and serves until `close()`.
    public static func bind(
        host: String, port: Int, settings: ShadowsocksSettings, group: any EventLoopGroup, logger: Logger,
        limit: SourceConnectionLimit = .unlimited
    ) async throws -> ShadowsocksServer {
        let state = try ServerState(settings: settings, logger: logger)
        let channels = try await Listeners.bind(
            .tcp(host: host, port: port), loops: Array(group.makeIterator()), limit: limit,
            childOptions: {
                $0.childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.recvAllocator, value: receiveAllocator)
            }
        ) { channel, _ in
            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: state))
        }
        return ShadowsocksServer(state: state, channels: channels, group: group)
    }

    /// Stops listening and saves the salt history as complete; from then on no request is accepted (a handshake
    /// still under way is drained like a probe). Established connections run on until they end.
    public func close() async {
        for channel in channels { try? await channel.close() }
        guard let saving else { return }
        let cancelled = saving.loop.makePromise(of: Void.self)
        saving.task.cancel(promise: cancelled)
        try? await cancelled.futureResult.get()
        try? await NIOThreadPool.singleton.runIfActive { [state] in state.saveSalts(stop: true) }
    }
}
