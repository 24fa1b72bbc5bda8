import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Reads of up to 256 KiB: bulk transfers then cost fewer system calls and fewer buffers per byte.
let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 16384, maximum: 1 << 18)

private let reusePort = ChannelOptions.Types.SocketOption(
    level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT))

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
        host: String, port: Int, settings: ShadowsocksSettings, group: any EventLoopGroup, logger: Logger
    ) async throws -> ShadowsocksServer {
        let state = try ServerState(settings: settings, logger: logger)
        var channels: [any Channel] = []
        var port = port
        do {
            for loop in group.makeIterator() {
                let channel = try await ServerBootstrap(group: loop)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(reusePort, value: 1)
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
                channels.append(channel)
                port = channel.localAddress?.port ?? port
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return ShadowsocksServer(state: state, channels: channels)
    }

    /// Stops listening. Established connections run on until they end.
    public func close() async {
        for channel in channels { try? await channel.close() }
    }
}
