import ChatmailSidecar
import ChatmailTLS
import IMAPCore
import Logging
import NIOCore

/// One IMAP connection: bytes to the framer, frames to the session, responses and effects
/// (STARTTLS, COMPRESS, discovery, IDLE notifications, close) back to the channel.
///
/// Output is bounded: responses go out in chunks while the channel is writable, and the next
/// command runs (and the socket is read) only once everything before it has been handed to the
/// channel and the channel is writable again. A client that leaves our output unread for
/// `sendTimeout` is dropped.
final class IMAPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State: Equatable {
        /// Taking commands from the framer.
        case ready
        /// A command runs on a thread pool, where the session is; `mailboxChanged` records a
        /// change notification that came meanwhile.
        case running(mailboxChanged: Bool)
        /// Logged in: commands wait for the supervisor's discovery answer.
        case waitingForDiscovery
        /// Sending what is queued, then closing; nothing more is read or run.
        case closing
        /// Closed, or closing once the last write is out: nothing more happens.
        case closed
    }

    private let services: IMAPServices
    private var framer: CommandFramer
    private var session: IMAPSession
    private var context: ChannelHandlerContext?
    private var source = "unknown"
    private var state = State.ready
    /// A read the pipeline asked for while commands could not run.
    private var readPending = false
    private var output = ResponseOutput()
    private var subscription: (token: UInt64, mailbox: Int64)?
    private var accountSubscription: UInt64?
    private var timer: RepeatedTask?
    /// Closes a connection whose TLS handshake has not completed in time.
    private var handshakeDeadline: Scheduled<Void>?
    /// Closes a connection whose output has waited too long for the client to read.
    private var sendDeadline: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    private var lastKeepalive = NIODeadline.now()
    private let opened = NIODeadline.now()
    private var lastWrite: EventLoopFuture<Void>?

    /// The client's address when it is not the peer's (`ProxyHeaderHandler`).
    private let peer: SocketAddress?

    init(services: IMAPServices, implicitTLS: Bool, peer: SocketAddress? = nil) {
        self.services = services
        self.peer = peer
        framer = CommandFramer(limits: services.settings.limits)
        var configuration = services.settings.session
        configuration.tlsActive = implicitTLS
        configuration.startTLSAvailable = configuration.startTLSAvailable && services.tls != nil
        session = IMAPSession(configuration: configuration, store: services.store)
        session.admit = { [services] in services.admit($0) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        if let address = (peer ?? context.remoteAddress)?.ipAddress { source = address }
        session.mayCreateAccount = { [services, source] in
            // The store asks just before it creates the account.
            let allowed = services.sourceLimits.takeAccountCreation(from: source)
            if allowed { services.counters.count { $0.accountsCreated += 1 } }
            return allowed
        }
        if session.configuration.tlsActive { startHandshakeDeadline(context: context) }
        send([session.greeting], context: context)
        let settings = services.settings
        let tick = min(settings.keepaliveInterval, .seconds(15), .nanoseconds(settings.loginTimeout.nanoseconds / 2))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in bound.value.tick() }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        handshakeDeadline?.cancel()
        sendDeadline?.cancel()
        if let subscription { services.notifier.unsubscribe(subscription.token) }
        subscription = nil
        if let accountSubscription { services.accountSessions.unsubscribe(accountSubscription) }
        accountSubscription = nil
        if let account = session.account { services.release(account) }
        state = .closed
        output = ResponseOutput()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closing && state != .closed else { return }
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        framer.feed(buffer.readableBytesView)
        process(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted {
            handshakeDeadline?.cancel()
            handshakeDeadline = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        drain(context: context)
        process(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        services.logger.debug("IMAP connection from \(personal: source) failed: \(error)")
        state = .closed
        context.close(promise: nil)
    }

    // MARK: The loop

    /// Whether the next command may run: none is running, and all output before it is out.
    private func canRun(_ context: ChannelHandlerContext) -> Bool {
        state == .ready && output.isEmpty && context.channel.isWritable
    }

    /// Reads wait while commands cannot run, so a client cannot make us buffer without bound.
    func read(context: ChannelHandlerContext) {
        if canRun(context) {
            context.read()
        } else {
            readPending = true
        }
    }

    private func process(context: ChannelHandlerContext) {
        var responses: [ResponseLine] = []
        while canRun(context), let event = framer.next() {
            switch event {
            case .continuationNeeded:
                responses.append(IMAPSession.continuationRequest)
            case .command(let frame):
                if session.phase == .notAuthenticated {
                    session.loginBlocked = !services.sourceLimits.loginAllowed(from: source)
                }
                send(responses, context: context)
                responses = []
                run(frame, context: context)
            default:
                let outcome = session.framingFailed(event)
                responses += outcome.responses
                if let effect = outcome.effect {
                    send(responses, context: context)
                    responses = []
                    apply(effect, context: context)
                }
            }
        }
        send(responses, context: context)
        if readPending && canRun(context) {
            readPending = false
            context.read()
        }
    }

    /// Runs one command: on a thread pool when there is one, else here. Commands before login
    /// (LOGIN hashes a password) have a pool of their own, so that slow commands of logged-in
    /// sessions cannot hold up logins.
    private func run(_ frame: [UInt8], context: ChannelHandlerContext) {
        let pool = session.account == nil ? services.loginThreadPool : services.threadPool
        guard let pool else {
            finish(session.receive(frame), context: context)
            return
        }
        state = .running(mailboxChanged: false)
        let session = self.session
        pool.runIfActive(eventLoop: context.eventLoop) { () -> IMAPSessionStep in
            var session = session
            let outcome = session.receive(frame)
            return IMAPSessionStep(session: session, outcome: outcome)
        }.assumeIsolated().whenComplete { [self] result in
            guard case .running(let mailboxChanged) = state else {
                // The connection went away or is closing: a login admitted meanwhile gives its
                // slot back here.
                if case .success(let step) = result, self.session.account == nil, let account = step.session.account {
                    services.release(account)
                }
                return
            }
            state = .ready
            guard let context = self.context else { return }
            switch result {
            case .success(let step):
                self.session = step.session
                finish(step.outcome, context: context)
            case .failure(let error):
                services.logger.error("IMAP command could not run: \(error)")
                return close(context: context)
            }
            if mailboxChanged { self.mailboxChanged() }
            process(context: context)
        }
    }

    private func finish(_ outcome: SessionOutcome, context: ChannelHandlerContext) {
        send(outcome.responses, context: context)
        if let effect = outcome.effect { apply(effect, context: context) }
        updateSubscription(context: context)
    }

    private func apply(_ effect: SessionEffect, context: ChannelHandlerContext) {
        switch effect {
        case .loginFailed(let checked, let closing):
            if checked { services.sourceLimits.recordLoginFailure(from: source) }
            services.counters.count { $0.loginsFailed += 1 }
            if closing { close(context: context) }
        case .authenticated(let account):
            services.counters.count { $0.loginsOK += 1 }
            services.logger.debug("IMAP login \(personal: account.address) from \(personal: source)")
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            accountSubscription = services.accountSessions.subscribe(mailbox: account.id, on: context.eventLoop) {
                bound.value.accountDeleted()
            }
            fetchDiscovery(for: account.address, context: context)
        case .close:
            close(context: context)
        case .startTLS:
            // Anything the client sent before the handshake was not protected: refuse to use it.
            guard !framer.hasBufferedInput, let tls = services.tls, let handler = try? tls.makeHandler() else {
                return close(context: context)
            }
            do {
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
                session.tlsStarted()
                startHandshakeDeadline(context: context)
            } catch {
                close(context: context)
            }
        case .startCompression:
            guard !framer.hasBufferedInput else { return close(context: context) }
            do {
                let inflater = try InflateHandler(limit: 4 * services.settings.limits.commandSize)
                try context.pipeline.syncOperations.addHandlers(
                    [inflater, try DeflateHandler()], position: .before(self))
                session.compressionStarted()
            } catch {
                close(context: context)
            }
        }
    }

    /// Discovery is read when the session authenticates; commands wait for it (bounded by the
    /// sidecar runtime's timeout), so that the first GETMETADATA already has it.
    private func fetchDiscovery(for account: String, context: ChannelHandlerContext) {
        guard state == .ready else { return }
        state = .waitingForDiscovery
        let promise = context.eventLoop.makePromise(of: [String: String].self)
        let discovery = services.discovery
        promise.completeWithTask { await discovery(account) }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            session.discoveryMetadata = (try? result.get()) ?? [:]
            guard state == .waitingForDiscovery else { return }
            state = .ready
            if let context = self.context { process(context: context) }
        }
    }

    private func updateSubscription(context: ChannelHandlerContext) {
        let selected = session.selectedMailboxID
        guard selected != subscription?.mailbox else { return }
        if let subscription { services.notifier.unsubscribe(subscription.token) }
        subscription = nil
        guard let selected else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let token = services.notifier.subscribe(mailbox: selected, on: context.eventLoop) {
            bound.value.mailboxChanged()
        }
        subscription = (token, selected)
        // A delivery that committed after the command read the mailbox but before this
        // subscription notified nobody: the next command looks at the store again.
        send(session.selectedMailboxChanged(), context: context)
    }

    private func mailboxChanged() {
        guard let context else { return }
        switch state {
        case .running: state = .running(mailboxChanged: true)
        case .ready, .waitingForDiscovery: send(session.selectedMailboxChanged(), context: context)
        case .closing, .closed: break
        }
    }

    /// The account was deleted: its sessions end at once.
    private func accountDeleted() {
        guard let context, state != .closing && state != .closed else { return }
        services.logger.info("IMAP session of a deleted account from \(personal: source) closed")
        send([.untagged("BYE Account deleted")], context: context)
        close(context: context)
    }

    private func tick() {
        guard let context, state == .ready || state == .waitingForDiscovery else { return }
        let now = NIODeadline.now()
        if session.phase == .idling {
            if now - lastKeepalive >= services.settings.keepaliveInterval {
                lastKeepalive = now
                send(session.keepalive(), context: context)
            }
            return
        }
        let limit = session.account == nil ? services.settings.loginTimeout : services.settings.autologout
        if now - lastActivity >= limit || (session.account == nil && now - opened >= limit) {
            send([.untagged("BYE Autologout; idle for too long")], context: context)
            close(context: context)
        }
    }

    // MARK: Output

    private func send(_ responses: [ResponseLine], context: ChannelHandlerContext) {
        guard !responses.isEmpty, state != .closed else { return }
        output.append(responses)
        if session.phase == .idling { lastKeepalive = .now() }
        drain(context: context)
    }

    /// Hands queued output to the channel while it is writable (one flush per chunk, so that
    /// writability counts every chunk), and watches a client that stops reading.
    private func drain(context: ChannelHandlerContext) {
        guard state != .closed else { return }
        while context.channel.isWritable, let chunk = output.nextChunk(allocator: context.channel.allocator) {
            lastWrite = context.writeAndFlush(wrapOutboundOut(chunk))
        }
        if output.isEmpty && context.channel.isWritable {
            sendDeadline?.cancel()
            sendDeadline = nil
            if state == .closing { closeAfterLastWrite(context: context) }
        } else if sendDeadline == nil {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            sendDeadline = context.eventLoop.scheduleTask(in: services.settings.sendTimeout) {
                bound.value.sendDeadline = nil
                bound.value.drop(because: "did not read its responses")
            }
        }
    }

    private func startHandshakeDeadline(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: services.settings.handshakeTimeout) {
            bound.value.handshakeDeadline = nil
            bound.value.drop(because: "did not complete the TLS handshake")
        }
    }

    /// Closes at once, dropping what is queued (a deadline passed).
    private func drop(because reason: String) {
        guard let context, state != .closed else { return }
        services.logger.debug("IMAP client \(personal: source) \(reason): closed")
        state = .closed
        context.close(promise: nil)
    }

    /// Closes once what is queued has gone out (BYE, the tagged answer).
    private func close(context: ChannelHandlerContext) {
        guard state != .closing && state != .closed else { return }
        state = .closing
        if output.isEmpty && context.channel.isWritable { closeAfterLastWrite(context: context) }
    }

    private func closeAfterLastWrite(context: ChannelHandlerContext) {
        state = .closed
        if let lastWrite {
            lastWrite.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}

/// A session after one command, carried back from the thread pool.
struct IMAPSessionStep: Sendable {
    var session: IMAPSession
    var outcome: SessionOutcome
}
