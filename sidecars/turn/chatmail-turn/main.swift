import ChatmailConfig
import ChatmailControl
import ChatmailMetrics
import ChatmailSidecar
import ChatmailTLS
import NIOCore
import NIOPosix
import TURNServer

/// chatmail-turn: STUN and TURN for Delta Chat calls. Under the supervisor the REST secrets arrive on the
/// control channel; run on its own (`chatmail-turn --config FILE`) it takes `[turn] secret` from the file.
@main
struct Main {
    static func main() async {
        await Sidecar.main(name: "turn") { sidecar in
            let settings = try TURNSettings(configuration: sidecar.configuration)
            let turn = settings.section
            if !sidecar.isSupervised, turn.secrets.isEmpty {
                throw SidecarError.configuration("[turn] secret is required when running without the supervisor")
            }
            let tls: TLSContextProvider? = try tlsProvider(sidecar)
            let group: any EventLoopGroup =
                turn.threads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: turn.threads) : sidecar.group
            let server: TURNServer
            do {
                server = try await TURNServer.start(
                    settings: settings, secrets: sidecar.isSupervised ? [] : turn.secrets, tls: tls, group: group,
                    logger: sidecar.logger, limit: sidecar.connectionLimit)
            } catch TURNServerError.configuration(let why) {
                throw SidecarError.configuration(why)
            } catch let error as TURNServerError {
                // A failed bind or system call: the supervisor retries, as for every other child.
                throw SidecarError.environment(error.description)
            }
            sidecar.reportMetrics { await server.metrics() }
            try await sidecar.serveUntilShutdown(onEvent: { event in
                switch event {
                case .turnSecrets(let secrets):
                    server.updateSecrets(secrets)
                    sidecar.logger.info("TURN secrets updated", metadata: ["count": "\(secrets.count)"])
                case .reload, .collectMetrics:
                    break  // the TLS provider reloads its certificates by itself; Sidecar answers for metrics
                }
            }) { await server.shutdown() }
            if turn.threads > 0 { try? await group.shutdownGracefully() }
        }
    }

    /// The TLS provider for TURNS, or none when `[tls]` has no certificate and no development one.
    static func tlsProvider(_ sidecar: Sidecar) throws -> TLSContextProvider? {
        guard sidecar.configuration.turnServesTLS else {
            sidecar.logger.notice("no [tls] certificate: TURN over TLS is off")
            return nil
        }
        return try sidecar.tlsProvider()
    }
}
