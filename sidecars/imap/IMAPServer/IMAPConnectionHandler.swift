import IMAPCore
import Logging
import NIOCore

/// One IMAP connection: bytes to the framer, frames to the session, responses and effects
/// (STARTTLS, COMPRESS, discovery, IDLE notifications, close) back to the channel.
final class IMAPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let services: IMAPServices
    private var framer: CommandFramer
    private var session: IMAPSession
    private var context: ChannelHandlerContext?
    private var source = "unknown"
    private var waitingForDiscovery = false
    /// A command runs on the thread pool: the session is there, and reading waits.
    private var busy = false
    private var readPending = false
    private var changedWhileBusy = false
    private var inactive = false
    private var closing = false
    private var subscription: (token: UInt64, mailbox: Int64)?
    private var timer: RepeatedTask?
    private var lastActivity = NIODeadline.now()
    private var lastKeepalive = NIODeadline.now()
    private let opened = NIODeadline.now()
    private var lastWrite: EventLoopFuture<Void>?

    init(services: IMAPServices, implicitTLS: Bool) {
        self.services = services
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
        if let address = context.remoteAddress?.ipAddress { source = address }
        send([session.greeting], context: context)
        let tick = min(services.settings.keepaliveInterval, .seconds(15))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in bound.value.tick() }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if let subscription { services.notifier.unsubscribe(subscription.token) }
        subscription = nil
        if let account = session.account { services.release(account) }
        closing = true
        inactive = true
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        framer.feed(buffer.readableBytesView)
        process(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        services.logger.debug("IMAP connection from \(source) failed: \(error)")
        closing = true
        context.close(promise: nil)
    }

    // MARK: The loop

    /// Reads wait while a command runs, so a client cannot make us buffer without bound.
    func read(context: ChannelHandlerContext) {
        if busy || waitingForDiscovery {
            readPending = true
        } else {
            context.read()
        }
    }

    private func process(context: ChannelHandlerContext) {
        var responses: [ResponseLine] = []
        while !busy && !waitingForDiscovery && !closing, let event = framer.next() {
            switch event {
            case .continuationNeeded:
                responses.append(IMAPSession.continuationRequest)
            case .command(let frame):
                if session.phase == .notAuthenticated {
                    session.loginBlocked = !services.loginAllowed(from: source)
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
        if !busy && !waitingForDiscovery && readPending && !closing {
            readPending = false
            context.read()
        }
    }

    /// Runs one command: on the thread pool when there is one, else here.
    private func run(_ frame: [UInt8], context: ChannelHandlerContext) {
        guard let pool = services.threadPool else {
            finish(session.receive(frame), context: context)
            return
        }
        busy = true
        let session = self.session
        pool.runIfActive(eventLoop: context.eventLoop) { () -> IMAPSessionStep in
            var session = session
            let outcome = session.receive(frame)
            return IMAPSessionStep(session: session, outcome: outcome)
        }.assumeIsolated().whenComplete { [self] result in
            busy = false
            var outcome: SessionOutcome?
            switch result {
            case .success(let step):
                let newlyAuthenticated = self.session.account == nil && step.session.account != nil
                self.session = step.session
                // A login admitted after the connection went away gives its slot back here.
                if inactive, newlyAuthenticated, let account = step.session.account { services.release(account) }
                outcome = step.outcome
            case .failure(let error):
                services.logger.error("IMAP command could not run: \(error)")
            }
            guard let context = self.context, !closing else { return }
            guard let outcome else { return close(context: context) }
            finish(outcome, context: context)
            if changedWhileBusy {
                changedWhileBusy = false
                mailboxChanged()
            }
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
        case .loginFailed:
            services.recordLoginFailure(from: source)
        case .authenticated(let account):
            services.logger.debug("IMAP login \(account.address) from \(source)")
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
        waitingForDiscovery = true
        let promise = context.eventLoop.makePromise(of: [String: String].self)
        let discovery = services.discovery
        promise.completeWithTask { await discovery(account) }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            session.discoveryMetadata = (try? result.get()) ?? [:]
            waitingForDiscovery = false
            if let context = self.context, !closing { process(context: context) }
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
        guard let context, !closing else { return }
        guard !busy else {
            changedWhileBusy = true
            return
        }
        send(session.selectedMailboxChanged(), context: context)
    }

    private func tick() {
        guard let context, !closing, !busy else { return }
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

    private func send(_ responses: [ResponseLine], context: ChannelHandlerContext) {
        guard !responses.isEmpty else { return }
        var buffer = context.channel.allocator.buffer(capacity: responses.reduce(0) { $0 + $1.encodedSize })
        for response in responses { response.encode(into: &buffer) }
        if session.phase == .idling { lastKeepalive = .now() }
        lastWrite = context.writeAndFlush(wrapOutboundOut(buffer))
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        // After what was written has gone out (BYE, the tagged answer).
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

extension ResponseLine {
    /// An upper bound for the wire size (literal headers counted generously).
    var encodedSize: Int {
        parts.reduce(2) { size, part in
            switch part {
            case .text(let text): size + text.utf8.count
            case .literal(let bytes): size + bytes.count + 16
            }
        }
    }

    /// The wire bytes, CRLF included, straight into `buffer` (message bodies are copied once).
    func encode(into buffer: inout ByteBuffer) {
        for part in parts {
            switch part {
            case .text(let text): buffer.writeString(text)
            case .literal(let bytes):
                buffer.writeString("{\(bytes.count)}\r\n")
                buffer.writeBytes(bytes)
            }
        }
        buffer.writeStaticString("\r\n")
    }
}
