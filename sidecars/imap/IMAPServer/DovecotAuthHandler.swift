import IMAPCore
import NIOCore
import NIOPosix
import Synchronization

/// The Dovecot auth socket the MTA checks SMTP logins on: the same accounts, first-login
/// creation and failed-login limiter (per `rip=`) as IMAP LOGIN, through `IMAPServices`.
public final class DovecotAuthService: Sendable {
    public struct Settings: Sendable {
        public var session = DovecotAuthSession.Settings()
        /// Connections open at once; more are closed at once (Postfix keeps one per smtpd process).
        public var maxConnections = 4096
        /// Time a client has to send VERSION and CPID.
        public var handshakeTimeout: TimeAmount = .seconds(10)

        public init() {}
    }

    let services: IMAPServices
    let settings: Settings
    private let state = Mutex<(open: Int, nextID: Int)>((0, 1))

    public init(services: IMAPServices, settings: Settings) {
        self.services = services
        self.settings = settings
    }

    /// A connection id, or nil when there are too many connections.
    func admit() -> Int? {
        state.withLock { state in
            guard state.open < settings.maxConnections else { return nil }
            state.open += 1
            state.nextID += 1
            return state.nextID - 1
        }
    }

    func release() {
        state.withLock { $0.open -= 1 }
    }

    public var connectionCount: Int { state.withLock { $0.open } }

    /// The store's verdict; runs on the thread pool (password hashing, SQLite).
    func verify(_ credentials: DovecotAuthSession.Credentials) -> DovecotAuthSession.Verdict {
        let source = credentials.remoteAddress ?? "unknown"
        let limits = services.sourceLimits
        guard limits.loginAllowed(from: source) else { return .blocked }
        do {
            guard
                let account = try services.store.login(
                    user: credentials.user, password: credentials.password,
                    mayCreate: { limits.takeAccountCreation(from: source) })
            else {
                limits.recordLoginFailure(from: source)
                return .rejected
            }
            return .accepted(user: account.address)
        } catch MailStoreError.creationLimited {
            return .creationLimited
        } catch {
            services.logger.error("SASL login could not be checked: \(error)")
            return .temporaryFailure
        }
    }
}

/// One connection on the auth socket: bytes to the session, its lines back, verifications on the
/// thread pool. Reading pauses while a verification runs or the client does not read our
/// replies, so neither a pipelining nor a stalled client makes us buffer without bound.
final class DovecotAuthHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let service: DovecotAuthService
    private var session: DovecotAuthSession
    private var admitted = false
    private var closing = false
    private var readPending = false
    private var handshakeTimer: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?

    init(service: DovecotAuthService) {
        self.service = service
        session = DovecotAuthSession(settings: service.settings.session)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let id = service.admit() else {
            service.services.logger.warning("SASL socket: too many connections, closing one")
            closing = true
            context.close(promise: nil)
            return
        }
        admitted = true
        var settings = service.settings.session
        settings.connectionID = id
        session = DovecotAuthSession(settings: settings)
        write(session.handshake, context: context)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: service.settings.handshakeTimeout) {
            let (handler, context) = bound.value
            if !handler.session.isReady { handler.close(context: context) }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        if admitted { service.release() }
        admitted = false
        closing = true
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        perform(session.receive(unwrapInboundIn(data).readableBytesView), context: context)
    }

    func read(context: ChannelHandlerContext) {
        if session.isVerifying || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReading(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context)
    }

    private func perform(_ actions: [DovecotAuthSession.Action], context: ChannelHandlerContext) {
        var text = ""
        for action in actions {
            switch action {
            case .send(let line):
                text += line
            case .verify(let credentials):
                write(text, context: context)
                text = ""
                verify(credentials, context: context)
            case .close:
                write(text, context: context)
                text = ""
                close(context: context)
            }
        }
        write(text, context: context)
        let tally = session.takeTally()
        if tally != DovecotAuthSession.Tally() {
            service.services.counters.count {
                $0.saslLoginsOK += tally.succeeded
                $0.saslLoginsFailed += tally.failed
            }
        }
    }

    private func verify(_ credentials: DovecotAuthSession.Credentials, context: ChannelHandlerContext) {
        let service = self.service
        let future: EventLoopFuture<DovecotAuthSession.Verdict>
        if let pool = service.services.loginThreadPool {
            future = pool.runIfActive(eventLoop: context.eventLoop) { service.verify(credentials) }
        } else {
            future = context.eventLoop.makeSucceededFuture(service.verify(credentials))
        }
        future.assumeIsolated().whenComplete { [self] result in
            guard !closing else { return }
            let verdict = (try? result.get()) ?? .temporaryFailure
            perform(session.verified(credentials.id, verdict), context: context)
            resumeReading(context: context)
        }
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard readPending, !closing, !session.isVerifying, context.channel.isWritable else { return }
        readPending = false
        context.read()
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        guard !text.isEmpty, !closing else { return }
        lastWrite = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)))
    }

    /// Closes once what was written has gone out, or after a grace period if the client does
    /// not read it.
    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        guard let lastWrite else { return context.close(promise: nil) }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: .seconds(5)) { bound.value.close(promise: nil) }
        lastWrite.assumeIsolated().whenComplete { _ in
            deadline.cancel()
            context.close(promise: nil)
        }
    }
}
