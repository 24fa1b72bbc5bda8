import ChatmailControl
import ChatmailMetrics
import ChatmailSidecar
import ChatmailState
import ShadowsocksCore
import ShadowsocksServer

/// chatmail-shadowsocks: a Shadowsocks (SIP004 and SIP022) server that reaches only this server's own services.
@main
struct Main {
    static func main() async {
        await Sidecar.main(name: "shadowsocks") { sidecar in
            let section = sidecar.configuration.shadowsocks
            // Checked as `chatmailctl check-config` checks it, before the key store is asked.
            _ = try ShadowsocksSettings(checking: sidecar.configuration)
            let settings = try ShadowsocksSettings(
                configuration: sidecar.configuration, generatedKey: try await generatedKey(sidecar))
            let server = try await ShadowsocksServer.bind(
                host: section.listen.host, port: Int(section.listen.port), settings: settings, group: sidecar.group,
                logger: sidecar.logger, limit: sidecar.connectionLimit)
            sidecar.logger.info(
                "listening on \(server.localAddress.map { "\($0)" } ?? "\(section.listen)") with \(settings.credential.method.rawValue), targets on ports \(settings.policy.upstreams.keys.sorted())"
            )
            sidecar.reportMetrics { ShadowsocksCounters.metrics.samples(server.counters) }
            try await sidecar.serveUntilShutdown(onEvent: { event in
                if case .reload = event { sidecar.logger.info("counters: \(server.counters)") }
            }) { await server.close() }
            sidecar.logger.info("counters: \(server.counters)")
        }
    }

    /// The key chatmail-supervisor keeps for the method when `[shadowsocks]` sets none: asked over the control
    /// channel, or, run on its own, read (read-only) from the state database. The child never makes or writes it.
    static func generatedKey(_ sidecar: Sidecar) async throws -> String? {
        let section = sidecar.configuration.shadowsocks
        guard section.key == nil, let method = ShadowsocksMethod(rawValue: section.method) else { return nil }
        if let answer = try await sidecar.request(.shadowsocksKey(method: method.rawValue)) {
            guard answer.ok, let key = answer.key else {
                throw SidecarError.configuration("no Shadowsocks key from the supervisor: \(answer.error ?? "none")")
            }
            return key
        }
        return try StateReader(directory: sidecar.configuration.supervisor.stateDir).setting(method.stateKey)
    }
}
