import ChatmailConfig
import ChatmailProxyProtocol
import FrontCore
import Logging
import NIOCore
import NIOPosix

/// Where the front passes the connections it does not serve itself.
public struct FrontUpstreams: Sendable {
    /// ALPN `imap`: chatmail-imap's TLS service; nil: such connections are closed.
    public var imap: SocketAddress?
    /// ALPN `smtp`: the MTA's SMTPS service; nil: such connections are closed.
    public var smtp: SocketAddress?
    /// Send a PROXY protocol v2 header with the client's address first.
    public var proxyProtocol: Bool
    public var connectTimeout: TimeAmount

    public init(
        imap: SocketAddress?, smtp: SocketAddress?, proxyProtocol: Bool = true, connectTimeout: TimeAmount = .seconds(5)
    ) {
        self.imap = imap
        self.smtp = smtp
        self.proxyProtocol = proxyProtocol
        self.connectTimeout = connectTimeout
    }

    /// The upstreams `[iroh]` names.
    public init(_ section: IrohSection) throws {
        func resolve(_ address: ListenAddress?) throws -> SocketAddress? {
            try address.map { try SocketAddress.makeAddressResolvingHost($0.host, port: Int($0.port)) }
        }
        self.init(
            imap: try resolve(section.imapUpstream), smtp: try resolve(section.smtpUpstream),
            proxyProtocol: section.upstreamProxyProtocol)
    }

    func address(for route: FrontRoute) -> SocketAddress? {
        switch route {
        case .imap: imap
        case .smtp: smtp
        case .here: nil
        }
    }
}

/// The first handler of a connection to the HTTPS front (after the deadline): reads the ClientHello without
/// terminating TLS (`ClientHelloReader`) and, by its ALPN, either adds the HTTPS handlers after itself and leaves
/// (the bytes read so far go up to them unchanged), or connects to the upstream and from then on splices the two
/// connections: the upstream gets a PROXY v2 header, then every byte the client sent, in order. Reads on either
/// side wait while the other side cannot take more. The deadline before it (`HandshakeDeadlineHandler`) bounds
/// the wait for the ClientHello; it is removed once a connection is passed (the upstream has its own).
final class FrontHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case reading
        case connecting
        case passing(UpstreamSpliceHandler)
        case servedHere
        case closed
    }

    private let upstreams: FrontUpstreams
    private let logger: Logger
    /// Adds the handlers that serve the connection here, at the end of the pipeline (after this handler).
    private let serveHere: (any Channel) throws -> Void
    private var state = State.reading
    private var reader = ClientHelloReader()
    private var buffered: ByteBuffer?
    private var readPending = false
    private var context: ChannelHandlerContext?

    init(upstreams: FrontUpstreams, logger: Logger, serveHere: @escaping (any Channel) throws -> Void) {
        self.upstreams = upstreams
        self.logger = logger
        self.serveHere = serveHere
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .reading:
            let result = bytes.withUnsafeReadableBytes { reader.feed($0) }
            if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
            switch result {
            case .needMore: break
            case .malformed(let reason): refuse(context: context, reason)
            case .alpn(let protocols): route(FrontRoute(alpn: protocols), context: context)
            }
        case .connecting:
            buffered!.writeBuffer(&bytes)
        case .passing(let upstream):
            upstream.write(bytes)
        case .servedHere, .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .passing(let upstream) = state { upstream.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .connecting:
            readPending = true
        case .passing(let upstream) where !upstream.isWritable:
            readPending = true
        default:
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .passing(let upstream) = state, context.channel.isWritable { upstream.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .passing(let upstream) = state { upstream.close() }
        state = .closed
        context.fireChannelInactive()
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        // Served here: what was read goes up to the HTTPS handlers as it came.
        if let bytes = buffered.take() {
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.leavePipeline(removalToken: removalToken)
    }

    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        logger.debug("front: closing \(context.remoteAddress?.description ?? "?"): \(reason)")
        state = .closed
        buffered = nil
        context.close(promise: nil)
    }

    private func route(_ route: FrontRoute, context: ChannelHandlerContext) {
        guard route != .here else {
            state = .servedHere
            do {
                try serveHere(context.channel)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } catch {
                refuse(context: context, "cannot serve HTTPS: \(error)")
            }
            return
        }
        guard let address = upstreams.address(for: route) else {
            return refuse(context: context, "ALPN \(route.rawValue) and no upstream for it")
        }
        state = .connecting
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(upstreams.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamSpliceHandler(front: bound.value))
                }
            }
            .connect(to: address)
            .hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                let front = bound.value
                switch result {
                case .success(let channel):
                    guard let upstream = try? channel.pipeline.syncOperations.handler(type: UpstreamSpliceHandler.self)
                    else { return channel.close(promise: nil) }
                    front.connected(upstream, route: route)
                case .failure(let error):
                    if let context = front.context {
                        front.refuse(
                            context: context, "cannot reach the \(route.rawValue) upstream \(address): \(error)")
                    }
                }
            }
    }

    private func connected(_ upstream: UpstreamSpliceHandler, route: FrontRoute) {
        guard case .connecting = state, let context else { return upstream.close() }
        state = .passing(upstream)
        if let deadline = try? context.pipeline.syncOperations.handler(type: HandshakeDeadlineHandler.self) {
            deadline.cancel()
            context.pipeline.syncOperations.removeHandler(deadline, promise: nil)
        }
        if upstreams.proxyProtocol {
            let header = ProxyHeader(
                source: context.channel.remoteAddress.flatMap(Self.proxyAddress),
                destination: context.channel.localAddress.flatMap(Self.proxyAddress))
            upstream.write(context.channel.allocator.buffer(bytes: header.encoded))
        }
        if let bytes = buffered.take() { upstream.write(bytes) }
        upstream.flush()
        logger.debug("front: \(context.remoteAddress?.description ?? "?") passed to \(route.rawValue)")
        if readPending, upstream.isWritable {
            readPending = false
            context.read()
        }
    }

    static func proxyAddress(_ address: SocketAddress) -> ProxyHeader.Address? {
        switch address {
        case .v4(let v4):
            return .init(ip: withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }, port: UInt16(address.port ?? 0))
        case .v6(let v6):
            return .init(ip: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }, port: UInt16(address.port ?? 0))
        default:
            return nil
        }
    }

    // MARK: Called by the upstream side

    var isClientWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamRead(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func upstreamReadComplete() { context?.flush() }

    func upstreamWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The upstream closed (or half-closed): the client gets what was written, then the connection closes.
    func upstreamClosed() {
        guard let context, case .passing = state else { return }
        state = .closed
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// The upstream end of a passed connection, on the client connection's event loop.
final class UpstreamSpliceHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let front: FrontHandler
    private var context: ChannelHandlerContext?
    private var readPending = false

    init(front: FrontHandler) { self.front = front }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }

    func flush() { context?.flush() }

    func close() { context?.close(promise: nil) }

    func clientWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { front.upstreamRead(unwrapInboundIn(data)) }

    func channelReadComplete(context: ChannelHandlerContext) { front.upstreamReadComplete() }

    func read(context: ChannelHandlerContext) {
        if front.isClientWritable { context.read() } else { readPending = true }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { front.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            front.upstreamClosed()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        front.upstreamClosed()
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
