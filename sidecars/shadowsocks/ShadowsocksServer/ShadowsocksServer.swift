import Logging
import NIOCore
import NIOPosix

/// Reads of up to 256 KiB: bulk transfers then cost fewer system calls and fewer buffers per byte.
let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 16384, maximum: 1 << 18)

/// A listening Shadowsocks server.
public final class ShadowsocksServer: Sendable {
    private let state: ServerState
    /// The listening channel.
    public let channel: any Channel

    /// The address it listens on (with the real port when bound to port 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    /// What happened so far.
    public var counters: ShadowsocksCounters { state.counters }

    private init(state: ServerState, channel: any Channel) {
        self.state = state
        self.channel = channel
    }

    /// Binds `host:port` and serves until `close()`.
    public static func bind(
        host: String, port: Int, settings: ShadowsocksSettings, group: any EventLoopGroup, logger: Logger
    ) async throws -> ShadowsocksServer {
        let state = try ServerState(settings: settings, logger: logger)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: state))
                }
            }
            .bind(host: host, port: port)
            .get()
        return ShadowsocksServer(state: state, channel: channel)
    }

    /// Stops listening. Established connections run on until they end.
    public func close() async {
        try? await channel.close()
    }
}
