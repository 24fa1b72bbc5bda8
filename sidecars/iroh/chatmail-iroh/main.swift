import ChatmailMetrics
import ChatmailSidecar
import IrohServer

/// The iroh relay child: plain HTTP on `[iroh] listen`, HTTPS on `tls_listen` when set (the relay's front, passing
/// ALPN `imap` and `smtp` to their upstreams); ready once both listen.
@main struct Main {
    static func main() async {
        await Sidecar.main(name: "iroh") { sidecar in
            let section = sidecar.configuration.iroh
            let tls = try section.tlsListen.map { _ in try sidecar.tlsProvider() }
            let front = try FrontUpstreams(section)
            let server = try await IrohRelayServer.start(
                listen: section.listen, tlsListen: section.tlsListen, tls: tls, front: front, limits: section.limits,
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
