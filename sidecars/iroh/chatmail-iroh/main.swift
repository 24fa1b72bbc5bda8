import ChatmailConfig
import ChatmailMetrics
import ChatmailSidecar
import FrontCore
import IMAPStore
import IrohServer

/// The iroh relay child: plain HTTP on `[iroh] listen`, HTTPS on `tls_listen` when set (the relay's front, passing
/// ALPN `imap` and `smtp` to their upstreams); ready once both listen.
@main struct Main {
    static func main() async {
        await Sidecar.main(name: "iroh") { sidecar in
            let section = sidecar.configuration.iroh
            let tls = try section.tlsListen.map { _ in try sidecar.tlsProvider() }
            let front = try FrontUpstreams(section)
            let configuration = sidecar.configuration
            let imap = configuration.imap
            // Autoconfiguration names the front's port for the routes it passes on.
            let frontPort = section.tlsListen.map { Int($0.port) }
            let site = FrontSite(
                onboarding: Onboarding(
                    domain: imap.mailDomain, localpartLength: imap.localpartMinLength...imap.localpartMaxLength,
                    passwordMinLength: imap.passwordMinLength, inviteLink: configuration.inviteLink,
                    imapFrontPort: front.imap == nil ? nil : frontPort,
                    smtpFrontPort: front.smtp == nil ? nil : frontPort),
                newAccountsPerHour: section.newAccountsPerHour
            ) {
                // The rule IMAP's first logins follow: [imap] auto_create_accounts, <state_dir>/nocreate, free space.
                guard imap.autoCreateAccounts, AccountCreationGate(for: configuration).state().isOpen else {
                    return "This relay creates no new accounts at the moment."
                }
                return nil
            }
            let server = try await IrohRelayServer.start(
                listen: section.listen, tlsListen: section.tlsListen, tls: tls, front: front, site: site,
                limits: section.limits,
                group: sidecar.group, logger: sidecar.logger, limit: sidecar.connectionLimit)
            sidecar.logger.info(
                "iroh relay listening",
                metadata: [
                    "http": "\(server.httpAddress.map { "\($0)" } ?? "-")",
                    "https": "\(server.httpsAddress.map { "\($0)" } ?? "-")",
                ])
            sidecar.reportMetrics { (try? await server.counters()).map(RelayCounters.metrics.samples) ?? [] }
            try await sidecar.serveUntilShutdown { await server.close() }
        }
    }
}
