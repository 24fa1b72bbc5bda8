import ChatmailCrypto
import ChatmailSidecar
import Foundation
import Logging
import NIOCore
import NIOPosix
import ShadowsocksCore

/// One client connection: reads the request, then splices the decrypted stream to the upstream of the
/// requested port and the sealed replies back, with backpressure both ways and half-close passed on.
///
/// A request that fails in any way (too short, bad tag, bad header, old timestamp, replayed salt) gets the
/// same treatment: no byte is sent, everything is read and dropped, and the connection is closed when the
/// handshake deadline (counted from accept) passes, so a prober learns nothing from timing, byte counts or
/// RST/FIN. A fresh, authenticated request for a refused target (a port not allowed, another host) comes
/// from a client with the key: it is closed at once, without a byte, so that client fails fast instead of
/// waiting for the deadline.
final class ConnectionHandler: ChannelDuplexHandler, SpliceClient {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking(ServerHandshake)
        /// Reading and dropping until the deadline.
        case draining
        /// Connecting to the upstream; `pending` holds what the client sends meanwhile, decrypted.
        case connecting(ChunkOpener, ChunkSealer)
        case established(ChunkOpener, ChunkSealer, Upstream)
        case closed
    }

    typealias Upstream = SpliceUpstreamHandler<ConnectionHandler>

    private let server: ServerState
    private var state: State
    private var cumulation = ByteBuffer()
    /// Decrypted client data waiting for the upstream connection.
    private var pending = ByteBuffer()
    private var deadline: Scheduled<Void>?
    private var halfOpen = false
    private var admitted = false
    /// A read the pipeline asked for while the upstream could not take more.
    private var readPending = false
    /// The client's address, for the per-source caps.
    private var source = IPAddress(v4: [0, 0, 0, 0])
    /// The client sent its FIN.
    private var clientFinished = false
    private var context: ChannelHandlerContext?

    init(server: ServerState) {
        self.server = server
        self.state = .handshaking(
            ServerHandshake(
                credential: server.settings.credential, earliestTimestamp: server.earliestTimestamp))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        source = Self.address(context.remoteAddress)
        guard server.admit(source: source) else {
            state = .closed
            context.close(promise: nil)
            return
        }
        admitted = true
        halfOpen = true
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: server.settings.handshakeTimeout) {
            [weak self] in
            self?.handshakeDeadlinePassed()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if admitted {
            server.closed(source: source, halfOpen: halfOpen)
            admitted = false
        }
        if case .established(_, _, let upstream) = state {
            // Still established: NIO closed the client socket without an error, as it does when the client's
            // FIN comes after our own. What the client sent is queued for the service: it goes out, then the FIN.
            upstream.finishOutput(thenClose: true)
        }
        state = .closed
        self.context = nil
        context.fireChannelInactive()
    }

    /// The client's IP address (0.0.0.0 for a socket without one, which then share one place).
    static func address(_ address: SocketAddress?) -> IPAddress {
        switch address {
        case .v4(let v4): IPAddress(v4: withUnsafeBytes(of: v4.address.sin_addr) { Array($0) })
        case .v6(let v6): IPAddress(v6: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) })
        default: IPAddress(v4: [0, 0, 0, 0])
        }
    }

    private func handshakeDeadlinePassed() {
        switch state {
        case .handshaking, .draining, .connecting:
            state = .closed
            context?.close(promise: nil)
        case .established, .closed:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .handshaking(var handshake):
            append(&buffer)
            let outcome = handshake.receive(&cumulation, now: UInt64(time(nil)))
            state = .handshaking(handshake)
            switch outcome {
            case .needMore: break
            case .failed(let error): fail(error)
            case .accepted(let request): accept(request, context: context)
            }
        case .connecting(var opener, let sealer):
            append(&buffer)
            do {
                try opener.open(from: &cumulation, into: &pending)
                state = .connecting(opener, sealer)
            } catch {
                close()
            }
        case .established(var opener, let sealer, let upstream):
            server.count { $0.bytesFromClients += buffer.readableBytes }
            var plaintext = context.channel.allocator.buffer(capacity: cumulation.readableBytes + buffer.readableBytes)
            do {
                try open(&buffer, with: &opener, into: &plaintext, allocator: context.channel.allocator)
            } catch {
                state = .established(opener, sealer, upstream)
                server.logger.debug("closing: client stream: \(error)")
                close()
                return
            }
            state = .established(opener, sealer, upstream)
            if plaintext.readableBytes > 0 { upstream.write(plaintext) }
        case .draining, .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .established(_, _, let upstream) = state { upstream.flush() }
    }

    private func append(_ buffer: inout ByteBuffer) {
        if cumulation.readableBytes == 0 {
            cumulation = buffer
        } else {
            cumulation.writeBuffer(&buffer)
        }
    }

    /// Opens the chunks `buffer` completes, decrypting each where it arrived. A chunk left partial by the last
    /// read is completed from the head of `buffer` in a small bridge (at most two chunks copied); appending the
    /// whole read to the leftover instead would copy every byte once more.
    private func open(
        _ buffer: inout ByteBuffer, with opener: inout ChunkOpener, into plaintext: inout ByteBuffer,
        allocator: ByteBufferAllocator
    ) throws(ShadowsocksError) {
        if cumulation.readableBytes > 0 {
            let moved = min(buffer.readableBytes, opener.maximumPayload + 34)
            var head = buffer.readSlice(length: moved)!
            var bridge = allocator.buffer(capacity: cumulation.readableBytes + moved)
            bridge.writeBuffer(&cumulation)
            bridge.writeBuffer(&head)
            try opener.open(from: &bridge, into: &plaintext)
            let unused = bridge.readableBytes
            guard unused <= moved else {
                // Even with all of `buffer` the chunk is not complete: keep waiting.
                cumulation = bridge
                return
            }
            // The bytes the bridge did not use are the last of those moved: `buffer` still has them.
            buffer.moveReaderIndex(to: buffer.readerIndex - unused)
        }
        cumulation = buffer
        try opener.open(from: &cumulation, into: &plaintext)
    }

    private func fail(_ error: ShadowsocksError) {
        server.count { counters in
            switch error {
            case .replay: break  // counted where it is detected
            default: counters.failedHandshakes += 1
            }
        }
        server.logger.debug("handshake failed: \(error); reading until the deadline")
        state = .draining
        cumulation = ByteBuffer()
    }

    private func accept(_ request: ShadowsocksRequest, context: ChannelHandlerContext) {
        let settings = server.settings
        let method = settings.credential.method
        // The replay check comes first: a replayed request is a probe and gets the silent drain.
        let responseSalt = Crypto.randomBytes(method.saltLength)
        guard server.remember(requestSalt: request.salt, responseSalt: method.is2022 ? nil : responseSalt) else {
            server.logger.debug("replayed salt")
            return fail(.replay)
        }
        let upstreamAddress: DestinationPolicy.Upstream
        switch settings.policy.decide(request.target) {
        case .success(let upstream):
            upstreamAddress = upstream
        case .failure(let refusal):
            // A client that holds the key asked for a target it may not reach: closing at once lets it fail
            // fast (a prober without the key never gets here).
            server.count { refusal == .port ? ($0.refusedPort += 1) : ($0.refusedHost += 1) }
            server.logger.info(
                "refused target \(personal: request.target) (\(refusal == .port ? "port not allowed" : "not this server"))"
            )
            return close()
        }
        let sealer: ChunkSealer
        do {
            sealer = try ChunkSealer(
                method: method, key: settings.credential.masterKey, salt: responseSalt, requestSalt: request.salt)
        } catch {
            return fail(.authentication)
        }
        var opener = request.opener
        pending = request.initialPayload
        do {
            try opener.open(from: &cumulation, into: &pending)
        } catch {
            return fail(.authentication)
        }
        server.count { $0.accepted += 1 }
        state = .connecting(opener, sealer)
        connect(to: upstreamAddress, context: context)
    }

    private func connect(to upstream: DestinationPolicy.Upstream, context: ChannelHandlerContext) {
        let handler = Upstream(client: self)
        let bound = NIOLoopBound(handler, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(server.settings.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: receiveAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .connect(to: server.upstreamAddresses[upstream]!)
            .assumeIsolated()
            .whenComplete { [weak self] result in
                guard let self else { return }
                switch result {
                case .success:
                    self.upstreamConnected(handler)
                case .failure(let error):
                    self.server.count { $0.upstreamFailures += 1 }
                    self.server.logger.warning("cannot connect to upstream \(upstream): \(error)")
                    self.close()
                }
            }
    }

    private func upstreamConnected(_ upstream: Upstream) {
        guard case .connecting(let opener, let sealer) = state, let context else {
            upstream.close()
            return
        }
        deadline?.cancel()
        deadline = nil
        halfOpen = false
        server.established(source: source)
        state = .established(opener, sealer, upstream)
        let idle = server.settings.idleTimeout
        try? context.pipeline.syncOperations.addHandler(
            IdleStateHandler(allTimeout: idle), position: .before(self))
        if pending.readableBytes > 0 {
            upstream.write(pending)
            upstream.flush()
        }
        pending = ByteBuffer()
        if clientFinished { upstream.finishOutput() }
        if readPending {
            readPending = false
            context.read()
        }
    }

    // MARK: outbound reads: hold them while the upstream cannot take more

    func read(context: ChannelHandlerContext) {
        switch state {
        case .connecting:
            readPending = true
        case .established(_, _, let upstream) where !upstream.isWritable:
            readPending = true
        default:
            context.read()
        }
    }

    /// The upstream can take data again.
    func upstreamWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    // MARK: data from the upstream

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func upstreamRead(_ data: ByteBuffer) {
        guard case .established(let opener, var sealer, let upstream) = state, let context else { return }
        var data = data
        var sealed = context.channel.allocator.buffer(capacity: sealer.sealedSize(data.readableBytes))
        do {
            try sealer.seal(&data, into: &sealed, now: UInt64(time(nil)))
        } catch {
            close()
            return
        }
        state = .established(opener, sealer, upstream)
        server.count { $0.bytesToClients += sealed.readableBytes }
        context.write(wrapOutboundOut(sealed), promise: nil)
    }

    func upstreamReadComplete() { context?.flush() }

    /// The service finished sending: pass the FIN on once everything before it is written.
    func upstreamInputClosed() {
        guard case .established(_, _, let upstream) = state, let context else { return }
        context.shutDownOutputAfterWrites { upstream.clientOutputFinished() }
    }

    func spliceEnded(error: (any Error)?) {
        if let error { server.logger.debug("upstream connection: \(error)") }
        close()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .established(_, _, let upstream) = state, context.channel.isWritable { upstream.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            clientFinished = true
            switch state {
            case .established(_, _, let upstream):
                upstream.finishOutput()
            case .connecting:
                break  // passed on once connected
            case .handshaking:
                // Nothing more can come; wait for the deadline like any failed request.
                state = .draining
            case .draining, .closed:
                break
            }
        case is IdleStateHandler.IdleStateEvent:
            server.logger.debug("idle timeout")
            close()
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("client connection: \(error)")
        switch state {
        case .handshaking, .draining:
            // Keep the failure invisible: the deadline closes it.
            state = .draining
        default:
            close()
        }
    }

    /// Closes both sides.
    func close() {
        if case .established(_, _, let upstream) = state { upstream.close() }
        if case .closed = state {
        } else {
            state = .closed
            context?.close(promise: nil)
        }
    }
}
