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

    /// The address it listens on (with the real port when bound to port 0).
    public var localAddress: SocketAddress? { channels.first?.localAddress }

    /// What happened so far.
    public var counters: ShadowsocksCounters { state.counters }

    private init(state: ServerState, channels: [any Channel]) {
        self.state = state
        self.channels = channels
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
        return ShadowsocksServer(state: state, channels: channels)
    }

    /// Stops listening. Established connections run on until they end.
    public func close() async {
        for channel in channels { try? await channel.close() }
    }
}
