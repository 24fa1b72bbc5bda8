import ChatmailConfig
import ChatmailProxyProtocol
import ChatmailSidecar
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
final class FrontHandler: ChannelDuplexHandler, RemovableChannelHandler, SpliceClient {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    typealias Upstream = SpliceUpstreamHandler<FrontHandler>

    private enum State {
        case reading
        case connecting
        case passing(Upstream)
        case servedHere
        case closed
    }

    private let upstreams: FrontUpstreams
    /// How long a passed connection stays open once the upstream finished and the client was sent everything and
    /// the FIN, for the client to finish its side.
    private let linger: TimeAmount
    private let hub: RelayHub
    private var logger: Logger { hub.logger }
    /// Adds the handlers that serve the connection here, at the end of the pipeline (after this handler).
    private let serveHere: (any Channel) throws -> Void
    private var state = State.reading
    private var reader = ClientHelloReader()
    private var buffered: ByteBuffer?
    private var readPending = false
    /// The client sent its FIN while the upstream connection was being opened.
    private var clientFinished = false
    private var context: ChannelHandlerContext?

    init(
        upstreams: FrontUpstreams, linger: TimeAmount, hub: RelayHub,
        serveHere: @escaping (any Channel) throws -> Void
    ) {
        self.upstreams = upstreams
        self.linger = linger
        self.hub = hub
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        // Half-closure is allowed from the moment a route is chosen, so the FIN comes while connecting or passing.
        switch state {
        case .passing(let upstream): upstream.finishOutput()
        case .connecting: clientFinished = true  // passed on once connected
        default: context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .passing(let upstream) = state {
            // Still passing: NIO closed the client socket without an error, as it does when the client's FIN
            // comes after our own. What the client sent is queued for the upstream: it goes out, then the FIN.
            upstream.finishOutput(thenClose: true)
        }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case .passing = state else { return context.fireErrorCaught(error) }
        logger.debug("front: client connection: \(error)")
        close()
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
        hub.countFront(nil)
        state = .closed
        buffered = nil
        context.close(promise: nil)
    }

    private func route(_ route: FrontRoute, context: ChannelHandlerContext) {
        guard route != .here else {
            state = .servedHere
            do {
                try serveHere(context.channel)
                hub.countFront(.here)
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
        // From here on half-close passes through: a client's FIN becomes the upstream's.
        try? context.channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(upstreams.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Upstream(client: bound.value))
                }
            }
            .connect(to: address)
            .hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                let front = bound.value
                switch result {
                case .success(let channel):
                    guard let upstream = try? channel.pipeline.syncOperations.handler(type: Upstream.self)
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

    private func connected(_ upstream: Upstream, route: FrontRoute) {
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
        hub.countFront(route)
        if clientFinished { upstream.finishOutput() }
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

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamRead(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func upstreamReadComplete() { context?.flush() }

    func upstreamWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The upstream finished sending: the client gets everything queued, then the FIN, and from then on has
    /// `linger` to finish its side before the connection closes (the kernel still sends what it holds).
    func upstreamInputClosed() {
        guard case .passing(let upstream) = state, let context else { return }
        let linger = linger
        context.shutDownOutputAfterWrites {
            upstream.clientOutputFinished()
            context.eventLoop.assumeIsolated().scheduleTask(in: linger) { [weak self] in self?.close() }
        }
    }

    func spliceEnded(error: (any Error)?) {
        if let error { logger.debug("front: upstream connection: \(error)") }
        close()
    }

    /// Closes both sides.
    private func close() {
        if case .passing(let upstream) = state { upstream.close() }
        if case .closed = state { return }
        state = .closed
        context?.close(promise: nil)
    }
}
