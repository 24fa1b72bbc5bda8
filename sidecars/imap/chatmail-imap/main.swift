import ChatmailConfig
import ChatmailMetrics
import ChatmailSidecar
import Foundation
import IMAPCore
import IMAPPush
import IMAPServer
import IMAPStore
import Logging
import NIOCore
import NIOPosix

/// METADATA entry names served from the supervisor's discovery.
let turnEntry = "/shared/vendor/deltachat/turn"
let turnsEntry = "/shared/vendor/deltachat/turns"
let irohEntry = "/shared/vendor/deltachat/irohrelay"

await Sidecar.main(name: "imap") { sidecar in
    let imap = sidecar.configuration.imap
    let stateDir = sidecar.configuration.supervisor.stateDir
    try? FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    let databasePath = MailDatabase.path(for: sidecar.configuration)
    let notifier = MailboxNotifier()
    let storeSettings = MailDatabase.settings(for: sidecar.configuration)
    // Push notifications: queued by deliveries in the store, posted by the worker's threads.
    var pushSettings = PushWorker.Settings()
    pushSettings.concurrency = imap.pushConcurrency
    pushSettings.schedule = PushSchedule(base: Int64(imap.pushRetryBase), giveUpAfter: Int64(imap.pushGiveUp))
    let push = PushWorker(
        settings: pushSettings,
        poster: CurlPoster(url: imap.pushURL, caFile: imap.pushCAFile, timeoutSeconds: imap.pushTimeout),
        logger: sidecar.logger)
    let database: MailDatabase
    do {
        database = try MailDatabase(
            path: databasePath, settings: storeSettings, changed: { notifier.notify($0) },
            pushQueued: { push.wake() })
    } catch {
        throw SidecarError.environment("cannot open the mail store \(databasePath): \(error)")
    }

    // Also checks what `chatmailctl check-config` checks (push_ca_file readable).
    let settings = try IMAPServerSettings(configuration: sidecar.configuration)

    let tls = try sidecar.tlsProvider(alpn: ["imap"])
    // Discovery per session, bounded: a slow supervisor means the last answer, never a wait.
    let discovery = DiscoveryCache(patience: .seconds(1)) { account in
        let discovery = await sidecar.discovery(account: account, timeout: .seconds(10))
        var entries: [String: String] = [:]
        if let turn = discovery.turn { entries[turnEntry] = turn }
        if let turns = discovery.turns { entries[turnsEntry] = turns }
        if let iroh = discovery.irohRelay { entries[irohEntry] = iroh }
        return entries
    }
    let pools = IMAPServer.ThreadPools.start()
    let services = IMAPServices(
        store: database, notifier: notifier, settings: settings, tls: tls, logger: sidecar.logger,
        threadPool: pools.commands, loginThreadPool: pools.logins
    ) { account in
        let (entries, fresh) = await discovery.current(account: account)
        if !fresh { sidecar.logger.warning("discovery is slow: serving the last answer") }
        return entries
    }

    sidecar.reportMetrics {
        var counters = services.counters.value
        counters.sessions = services.sessionCount
        return IMAPCounters.metrics.samples(counters) + PushCounters.metrics.samples(push.counters)
    }
    let lmtpBackend = CountingLMTPBackend(database, board: services.counters)

    var lmtpSettings = LMTPSession.Settings()
    lmtpSettings.hostname = imap.mailDomain
    lmtpSettings.maxMessageSize = imap.maxMessageSize

    let listeners = try await Listeners.bindAll(limit: sidecar.connectionLimit) { listeners in
        for (address, implicitTLS) in [(imap.listen, false), (imap.tlsListen, true)] {
            let channel = try await IMAPServer.bindIMAP(
                host: address.host, port: Int(address.port), implicitTLS: implicitTLS, services: services,
                group: sidecar.group, limit: listeners.limit)
            listeners.keep([channel])
            sidecar.logger.info(
                "IMAP\(implicitTLS ? " TLS" : "") listening on \(channel.localAddress?.description ?? "?")")
        }
        if let address = imap.proxyTLSListen {
            // Connections from the HTTPS front, counted per client there: no per-source cap on the front itself.
            let channel = try await IMAPServer.bindIMAP(
                host: address.host, port: Int(address.port), implicitTLS: true, proxyProtocol: true,
                services: services, group: sidecar.group, limit: .unlimited)
            listeners.keep([channel])
            sidecar.logger.info("IMAP TLS behind the front (PROXY v2) listening on \(address)")
        }
        let socketDirectory = (imap.lmtpSocket as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        listeners.keep([
            try await IMAPServer.bindLMTP(
                unixPath: imap.lmtpSocket, settings: lmtpSettings, backend: lmtpBackend, threadPool: pools.lmtp,
                sendTimeout: settings.sendTimeout, group: sidecar.group)
        ])
        // The MTA's LMTP client runs as its own user: the socket is open to all, and the
        // directory it is in decides who can reach it.
        chmod(imap.lmtpSocket, 0o666)
        sidecar.logger.info("LMTP listening on \(imap.lmtpSocket)")
        if !imap.authSocket.isEmpty {
            var authSettings = DovecotAuthService.Settings()
            authSettings.session.allowPlaintext = imap.plaintextLogin
            authSettings.session.processID = Int(getpid())
            authSettings.session.cookie = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }
                .joined()
            let service = DovecotAuthService(services: services, settings: authSettings)
            let directory = (imap.authSocket as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            listeners.keep([
                try await IMAPServer.bindAuth(unixPath: imap.authSocket, service: service, group: sidecar.group)
            ])
            // As for LMTP: the MTA's smtpd runs as its own user; the directory decides who reaches it.
            chmod(imap.authSocket, 0o666)
            sidecar.logger.info("SASL (Dovecot auth protocol) listening on \(imap.authSocket)")
        }
        if let address = imap.lmtpListen {
            let channel = try await IMAPServer.bindLMTP(
                host: address.host, port: Int(address.port), settings: lmtpSettings, backend: lmtpBackend,
                threadPool: pools.lmtp, sendTimeout: settings.sendTimeout, group: sidecar.group,
                limit: listeners.limit)
            listeners.keep([channel])
            sidecar.logger.info("LMTP listening on \(channel.localAddress?.description ?? "?")")
        }
        return listeners
    }

    if imap.push {
        push.start(store: database)
        sidecar.logger.info("push notifications go to \(imap.pushURL)")
    }

    // The sweep: old messages, inactive accounts and unused device tokens, hourly and once at start.
    let sweep = Task {
        while !Task.isCancelled {
            do {
                let removed = try database.sweep(
                    messageAge: Int64(imap.maxMessageAgeDays) * 86400, inactiveAge: Int64(imap.maxInactiveDays) * 86400)
                if removed.messages > 0 || removed.accounts > 0 {
                    sidecar.logger.info("sweep removed \(removed.messages) messages, \(removed.accounts) accounts")
                }
                let tokens = try database.expirePushTokens(maxAge: Int64(imap.pushTokenDays) * 86400)
                if tokens > 0 { sidecar.logger.info("sweep removed \(tokens) device tokens unused for long") }
            } catch {
                sidecar.logger.error("sweep failed: \(error)")
            }
            try? await Task.sleep(for: .seconds(3600))
        }
    }
    // Accounts deleted from outside (`chatmailctl user del` writes the store): their sessions
    // end within half a second.
    let deletions = Task {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            let live = services.accountsInSession
            guard !live.isEmpty, let gone = try? database.missingAccounts(live), !gone.isEmpty else { continue }
            services.accountsDeleted(gone)
        }
    }
    try await sidecar.serveUntilShutdown(listeners)
    sweep.cancel()
    deletions.cancel()
    if imap.push { await push.stop() }
    try? await pools.shutdown()
}
