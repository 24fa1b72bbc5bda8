import COpenSSL
import NIOCore

/// Fired inbound once the handshake is done.
public struct TLSHandshakeCompleted: Sendable, Equatable {
    /// The protocol chosen by ALPN, if any.
    public var alpn: String?
    /// The name the client asked for by SNI, if any.
    public var serverName: String?
    /// "TLSv1.3" or "TLSv1.2".
    public var version: String
}

/// TLS for one connection, driving OpenSSL through memory BIOs: ciphertext in from the channel,
/// plaintext up to the handlers after it; plaintext written by them, ciphertext out.
///
/// - Add it first in a new pipeline, or insert it at the front of one that has spoken plaintext
///   (STARTTLS): from then on every inbound byte is TLS. Whoever handled the plaintext must drop
///   what it buffered beyond the STARTTLS command, or those bytes would count as sent over TLS.
/// - Writes made during the handshake wait for it. After it, plaintext is encrypted as it is
///   written and the ciphertext waits in the channel, so writability (backpressure) is exact.
/// - `close` sends close_notify first; half-closure (`close(mode: .output)`) too. A peer's
///   close_notify becomes `ChannelEvent.inputClosed` when the channel allows remote half-closure,
///   else the connection is closed.
/// - Failures are fired as `TLSError` and close the connection.
public final class OpenSSLHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case handshaking
        case active
        /// We sent close_notify and closed our output; reading goes on.
        case outputClosed
        case closed
    }

    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let isServer: Bool
    private let serverName: String?
    private var state = State.idle
    private var pendingWrites: [(data: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    private var flushPending = false
    /// Keeps the context (and its callbacks' data) alive as long as the connection.
    private let tlsContext: TLSContext

    /// Size of the plaintext buffers handed up: one TLS record's worth.
    private static let readChunk = 16 * 1024

    /// - Parameter serverName: for a client, the name sent by SNI (not for IP literals).
    public init(context: TLSContext, serverName: String? = nil) throws(TLSError) {
        guard let ssl = context.makeConnection(), let readBIO = BIO_new(BIO_s_mem()),
            let writeBIO = BIO_new(BIO_s_mem())
        else { throw .configuration("cannot create a connection") }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.isServer = context.isServer
        self.serverName = serverName
        self.tlsContext = context
    }

    deinit { SSL_free(ssl) }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .handshaking
        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName { _ = cm_ssl_set_tlsext_host_name(ssl, serverName) }
            handshake(context: context)
        }
    }

    private func handshake(context: ChannelHandlerContext) {
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            state = .active
            writeCiphertext(context: context, promise: nil)
            context.fireUserInboundEventTriggered(handshakeCompleted())
            guard state == .active else { return }  // the event's handler may have closed it
            encryptPendingWrites(context: context)
            readPlaintext(context: context)  // application data may have come with the Finished message
            return
        }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            writeCiphertext(context: context, promise: nil)
        default:
            fail(context: context, TLSError(.handshakeFailed, TLSError.drainQueue()))
        }
    }

    private func handshakeCompleted() -> TLSHandshakeCompleted {
        var alpnPointer: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpnPointer, &alpnLength)
        let alpn = alpnPointer.map {
            String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self)
        }
        let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        return TLSHandshakeCompleted(alpn: alpn, serverName: name, version: String(cString: SSL_get_version(ssl)))
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var ciphertext = unwrapInboundIn(data)
        switch state {
        case .idle, .closed:
            return
        case .handshaking, .active, .outputClosed:
            break
        }
        while ciphertext.readableBytes > 0 {
            let written = ciphertext.withUnsafeReadableBytes { BIO_write(readBIO, $0.baseAddress, Int32($0.count)) }
            guard written > 0 else { return fail(context: context, TLSError(.protocolError, "cannot buffer input")) }
            ciphertext.moveReaderIndex(forwardBy: Int(written))
        }
        if case .handshaking = state {
            handshake(context: context)
        } else {
            readPlaintext(context: context)
        }
    }

    /// Decrypts everything buffered, handing up one buffer per 16 KiB.
    private func readPlaintext(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: Self.readChunk)
        while true {
            var result: Int32 = 0
            if buffer.writableBytes == 0 {
                context.fireChannelRead(wrapInboundOut(buffer))
                buffer = context.channel.allocator.buffer(capacity: Self.readChunk)
            }
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { pointer in
                result = SSL_read(ssl, pointer.baseAddress, Int32(pointer.count))
                return Int(max(result, 0))
            }
            if result > 0 { continue }
            // Ask before handing data up: a handler may write, and that resets the error state.
            let error = SSL_get_error(ssl, result)
            if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                writeCiphertext(context: context, promise: nil)  // session tickets, key updates
            case SSL_ERROR_ZERO_RETURN:
                peerSentCloseNotify(context: context)
            default:
                fail(context: context, TLSError(.protocolError, TLSError.drainQueue()))
            }
            return
        }
    }

    private func peerSentCloseNotify(context: ChannelHandlerContext) {
        let halfClosure = (try? context.channel.syncOptions?.getOption(.allowRemoteHalfClosure)) ?? false
        if case .outputClosed = state {
            state = .closed
            context.close(promise: nil)
        } else if halfClosure {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            close(context: context, mode: .all, promise: nil)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        // The application asks for reads only once it sees data; the handshake must go on meanwhile.
        if case .handshaking = state, (try? context.channel.syncOptions?.getOption(.autoRead)) == false {
            context.read()
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch state {
            case .handshaking:
                return fail(context: context, TLSError(.unexpectedEOF, "EOF"))
            case .active, .outputClosed:
                // EOF without close_notify: nothing more can be trusted to arrive; end it.
                state = .closed
                return context.close(promise: nil)
            case .idle, .closed:
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let wasHandshaking = if case .handshaking = state { true } else { false }
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        if wasHandshaking { context.fireErrorCaught(TLSError(.unexpectedEOF, "EOF")) }
        context.fireChannelInactive()
    }

    // MARK: Outbound

    /// Encrypts at once when the handshake is done, so the ciphertext waits in the channel, where
    /// it counts for writability; during the handshake, plaintext waits here.
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .closed, .outputClosed:
            promise?.fail(ChannelError.outputClosed)
        case .idle, .handshaking:
            pendingWrites.append((unwrapOutboundIn(data), promise))
        case .active:
            encrypt(context: context, unwrapOutboundIn(data), promise: promise)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        if case .active = state {
            context.flush()
        } else {
            flushPending = true
        }
    }

    private func encrypt(context: ChannelHandlerContext, _ data: ByteBuffer, promise: EventLoopPromise<Void>?) {
        if data.readableBytes > 0 {
            let written = data.withUnsafeReadableBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard written == Int32(data.readableBytes) else {
                let error = TLSError(.protocolError, TLSError.drainQueue())
                promise?.fail(error)
                return fail(context: context, error)
            }
        }
        writeCiphertext(context: context, promise: promise, flush: false)
    }

    /// The writes made during the handshake, once it is done.
    private func encryptPendingWrites(context: ChannelHandlerContext) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        for (data, promise) in writes { encrypt(context: context, data, promise: promise) }
        if flushPending {
            flushPending = false
            context.flush()
        }
    }

    /// Sends what OpenSSL has produced (flushed unless `flush` is false). Completes `promise`
    /// once it is written, at once if there is nothing.
    private func writeCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: Bool = true) {
        let pending = Int(cm_bio_pending(writeBIO))
        guard pending > 0 else {
            promise?.succeed()
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { pointer in
            Int(max(BIO_read(writeBIO, pointer.baseAddress, Int32(pending)), 0))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
        if flush { context.flush() }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.active, .all), (.active, .output), (.outputClosed, .all):
            if case .active = state { SSL_shutdown(ssl) }  // queues close_notify
            state = mode == .all ? .closed : .outputClosed
            let written = context.eventLoop.makePromise(of: Void.self)
            writeCiphertext(context: context, promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: mode, promise: promise) }
        default:
            if mode == .all { state = .closed }
            context.close(mode: mode, promise: promise)
        }
    }

    // MARK: Failure

    private func fail(context: ChannelHandlerContext, _ error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        writeCiphertext(context: context, promise: nil)  // the alert OpenSSL queued, if any
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPendingWrites(_ error: any Error) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        writes.forEach { $0.promise?.fail(error) }
    }
}
