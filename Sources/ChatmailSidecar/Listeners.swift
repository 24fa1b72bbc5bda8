import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a stream listener listens.
public enum ListenTarget: Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    /// A Unix socket; a stale socket file at `path` is replaced.
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): path
        }
    }
}

/// The one way a sidecar binds its stream listeners, with the guards every listener has:
///
/// - an accept path that backs off for a second when `accept` fails (EMFILE, ENFILE, ENOBUFS,
///   ENOMEM) instead of spinning on a listener that stays readable, with the failure logged at a
///   bounded rate (see `ListenerGuardHandler` for why NIO's `AcceptBackoffHandler` is not used);
/// - the per-source connection cap of `SourceConnectionLimit`, shared by all listeners of a child:
///   a connection over it is closed at once, before any handler of the child sees it.
public enum Listeners {
    private static let reusePort = ChannelOptions.Types.SocketOption(
        level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT))

    /// Binds a listener on `target` on each of `loops`: more than one share the port with
    /// `SO_REUSEPORT` (the kernel spreads connections over them), and the port the first one got
    /// is used by the others, so port 0 works. Accepted connections run on the listener's loop, or
    /// on `childGroup` when given. When a bind fails, the listeners bound so far are closed and
    /// `SidecarError.environment` says which address could not be bound.
    ///
    /// - Parameters:
    ///   - childOptions: sets child channel options on the bootstrap (not its server channel
    ///     initializer: that holds the guards).
    ///   - configure: sets up an accepted connection's pipeline, on its event loop; `listener` is
    ///     the index in `loops` of the listener that accepted it.
    public static func bind(
        _ target: ListenTarget, loops: [any EventLoop], childGroup: (any EventLoopGroup)? = nil,
        limit: SourceConnectionLimit, backlog: Int32 = 1024,
        childOptions: (ServerBootstrap) -> ServerBootstrap = { $0 },
        configure: @escaping @Sendable (_ channel: any Channel, _ listener: Int) throws -> Void
    ) async throws -> [any Channel] {
        var bound: [any Channel] = []
        var target = target
        do {
            for (index, loop) in loops.enumerated() {
                var bootstrap = ServerBootstrap(group: loop, childGroup: childGroup ?? loop)
                    .serverChannelOption(.backlog, value: backlog)
                    .serverChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ListenerGuardHandler(limit: limit))
                        }
                    }
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try configure(channel, index) }
                    }
                bootstrap = childOptions(bootstrap)
                let channel: any Channel
                switch target {
                case .tcp(let host, let port):
                    bootstrap = bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    if loops.count > 1 { bootstrap = bootstrap.serverChannelOption(reusePort, value: 1) }
                    channel = try await bootstrap.bind(host: host, port: port).get()
                    if let port = channel.localAddress?.port { target = .tcp(host: host, port: port) }
                case .unix(let path):
                    channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
                        .get()
                }
                bound.append(channel)
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw SidecarError.environment("cannot listen on \(target): \(error)")
        }
        return bound
    }
}

extension Listeners {
    /// Runs `body`, which binds a child's listeners into a `ListenerSet`; when it throws, every
    /// listener bound so far is closed before the error is passed on. Returns what `body` returns.
    public static func bindAll<Result>(
        limit: SourceConnectionLimit, _ body: (ListenerSet) async throws -> Result
    ) async throws -> Result {
        let set = ListenerSet(limit: limit)
        do {
            return try await body(set)
        } catch {
            await set.close()
            throw error
        }
    }
}

/// The listeners of one child as `Listeners.bindAll` binds them, in order.
public final class ListenerSet {
    /// Every listener bound or kept so far.
    public private(set) var channels: [any Channel] = []
    public let limit: SourceConnectionLimit

    init(limit: SourceConnectionLimit) {
        self.limit = limit
    }

    /// `Listeners.bind` with this set's cap; the listeners are kept in the set and returned.
    @discardableResult
    public func bind(
        _ target: ListenTarget, loops: [any EventLoop], childGroup: (any EventLoopGroup)? = nil, backlog: Int32 = 1024,
        childOptions: (ServerBootstrap) -> ServerBootstrap = { $0 },
        configure: @escaping @Sendable (_ channel: any Channel, _ listener: Int) throws -> Void
    ) async throws -> [any Channel] {
        keep(
            try await Listeners.bind(
                target, loops: loops, childGroup: childGroup, limit: limit, backlog: backlog,
                childOptions: childOptions, configure: configure))
    }

    /// Keeps listeners bound elsewhere (by a server's own `Listeners.bind`), to be closed with the set.
    @discardableResult
    public func keep(_ listeners: [any Channel]) -> [any Channel] {
        channels += listeners
        return listeners
    }

    /// Closes every listener of the set.
    public func close() async {
        for channel in channels { try? await channel.close() }
    }
}

/// The per-source connection cap of one child, shared by all its TCP listeners: at most
/// `maxPerSource` open connections from one IPv4 address or one IPv6 /64 (what one host
/// usually gets); 0 turns it off. Refusals are counted and logged at most every 10 seconds.
public final class SourceConnectionLimit: Sendable {
    public let maxPerSource: Int
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var open: [SourceKey: Int] = [:]
        var refused = 0
        var refusedSinceLog = 0
        var lastLog: NIODeadline?
        var acceptFailuresSinceLog = 0
        var lastAcceptLog: NIODeadline?
    }

    private static let logInterval = TimeAmount.seconds(10)

    public init(maxPerSource: Int, logger: Logger) {
        self.maxPerSource = maxPerSource
        self.logger = logger
    }

    /// No cap (tests that open many connections from loopback).
    public static var unlimited: SourceConnectionLimit {
        SourceConnectionLimit(maxPerSource: 0, logger: Logger(label: "listeners"))
    }

    /// Connections refused so far.
    public var refused: Int { state.withLock { $0.refused } }

    /// Open connections counted for `address`'s source.
    public func openConnections(from address: SocketAddress) -> Int {
        guard let key = SourceKey(address) else { return 0 }
        return state.withLock { $0.open[key] ?? 0 }
    }

    /// Counts a new connection from `address`; false when its source is at the cap. A connection
    /// admitted with a key must be given back with `release`.
    func admit(_ address: SocketAddress?) -> (admitted: Bool, key: SourceKey?) {
        guard maxPerSource > 0, let address, let key = SourceKey(address) else { return (true, nil) }
        let now = NIODeadline.now()
        let (admitted, report) = state.withLock { state -> (Bool, Int?) in
            let count = state.open[key, default: 0]
            if count < maxPerSource {
                state.open[key] = count + 1
                return (true, nil)
            }
            state.refused += 1
            state.refusedSinceLog += 1
            guard state.lastLog.map({ now - $0 >= Self.logInterval }) ?? true else { return (false, nil) }
            defer { (state.lastLog, state.refusedSinceLog) = (now, 0) }
            return (false, state.refusedSinceLog)
        }
        if let report {
            logger.warning(
                "connections over the per-source cap closed",
                metadata: [
                    "refused": "\(report)", "last": "\(personal: address)",
                    "max_connections_per_source": "\(maxPerSource)",
                ])
        }
        return (admitted, admitted ? key : nil)
    }

    func release(_ key: SourceKey) {
        state.withLock { state in
            guard let count = state.open[key] else { return }
            state.open[key] = count > 1 ? count - 1 : nil
        }
    }

    /// Logs a failed accept, at most every 10 seconds.
    func acceptFailed(_ error: any Error) {
        let now = NIODeadline.now()
        let report = state.withLock { state -> Int? in
            state.acceptFailuresSinceLog += 1
            guard state.lastAcceptLog.map({ now - $0 >= Self.logInterval }) ?? true else { return nil }
            defer { (state.lastAcceptLog, state.acceptFailuresSinceLog) = (now, 0) }
            return state.acceptFailuresSinceLog
        }
        if let report {
            logger.error("accept failed, trying again in a second: \(error)", metadata: ["failures": "\(report)"])
        }
    }
}

/// The source of a connection as the cap counts it: an IPv4 address, or the /64 of an IPv6 one
/// (an IPv4-mapped IPv6 address counts as its IPv4 address).
struct SourceKey: Hashable {
    let high: UInt64
    let low: UInt64

    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            (high, low) = (0, UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr)) | 1 << 32)
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            let prefix = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let suffix = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if prefix == 0, suffix >> 32 == 0xFFFF {
                (high, low) = (0, suffix & 0xFFFF_FFFF | 1 << 32)
            } else {
                (high, low) = (prefix, 0)
            }
        case .unixDomainSocket:
            return nil
        }
    }
}

/// In a listener's pipeline, before NIO's accept handler: closes an accepted connection whose
/// source is at the cap, counts the others until they close, and backs off when `accept` fails
/// for want of a resource.
///
/// NIO's own `AcceptBackoffHandler` is not enough: it delays the next `read()`, but when the first
/// `accept` after a wake-up fails, NIO leaves the read pending and the listener registered with
/// epoll, which reports it readable again at once (seen with strace: `accept4` EMFILE and
/// `epoll_wait` alternating thousands of times a second, the loop at 100%). Turning `autoRead` off
/// takes the listener out of epoll until it is turned on again a second later.
final class ListenerGuardHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    static let backoff = TimeAmount.seconds(1)

    private let limit: SourceConnectionLimit
    private var resume: Scheduled<Void>?

    init(limit: SourceConnectionLimit) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let accepted = unwrapInboundIn(data)
        let (admitted, key) = limit.admit(accepted.remoteAddress)
        guard admitted else {
            accepted.close(promise: nil)
            return
        }
        if let key {
            let limit = self.limit
            accepted.closeFuture.whenComplete { _ in limit.release(key) }
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        switch error.errnoCode {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            limit.acceptFailed(error)
            guard resume == nil, let options = context.channel.syncOptions else { return }
            try? options.setOption(.autoRead, value: false)
            let channel = context.channel
            resume = context.eventLoop.assumeIsolated().scheduleTask(in: Self.backoff) { [weak self] in
                self?.resume = nil
                try? channel.syncOptions?.setOption(.autoRead, value: true)
            }
        default:
            // ECONNABORTED and the like: that one connection is gone, the next accept may work.
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }
}
