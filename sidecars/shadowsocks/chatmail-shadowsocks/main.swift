import ChatmailSidecar
import ShadowsocksServer

/// chatmail-shadowsocks: a Shadowsocks (SIP004 and SIP022) server that reaches only this server's own services.
@main
struct Main {
    static func main() async {
        await Sidecar.main(name: "shadowsocks") { sidecar in
            let section = sidecar.configuration.shadowsocks
            let settings: ShadowsocksSettings
            do {
                settings = try ShadowsocksSettings(configuration: sidecar.configuration)
            } catch let error as SettingsError {
                throw SidecarError.configuration(error.description)
            }
            let server = try await ShadowsocksServer.bind(
                host: section.listen.host, port: Int(section.listen.port), settings: settings, group: sidecar.group,
                logger: sidecar.logger, limit: sidecar.connectionLimit)
            sidecar.logger.info(
                "listening on \(server.localAddress.map { "\($0)" } ?? "\(section.listen)") with \(settings.credential.method.rawValue), targets on ports \(settings.policy.upstreams.keys.sorted())"
            )
            try await sidecar.serveUntilShutdown(onEvent: { event in
                if case .reload = event { sidecar.logger.info("counters: \(server.counters)") }
            }) { await server.close() }
            sidecar.logger.info("counters: \(server.counters)")
        }
    }
}
