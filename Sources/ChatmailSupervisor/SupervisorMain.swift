import ChatmailConfig
import ChatmailSystemd
import Foundation
import Logging
import NIOPosix
import UnixSignals

/// The supervisor process from configuration to exit: returns the exit status.
public enum SupervisorMain {
    /// `EX_CONFIG`: systemd's `RestartPreventExitStatus=78` keeps a broken configuration from looping.
    public static let configurationErrorStatus: Int32 = 78

    /// Call once per process: it installs the process-wide log handler.
    public static func run(configurationPath: String) async -> Int32 {
        JournalLogging.bootstrap(identifier: "chatmail-supervisor", environment: ProcessInfo.processInfo.environment)
        let notifier = SystemdNotifier()
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: configurationPath)
        } catch {
            FileHandle.standardError.write(Data("chatmail-supervisor: \(error)\n".utf8))
            notifier.send(["STATUS": "configuration error", "ERRNO": "22"])
            return configurationErrorStatus
        }
        var logger = Logger(label: "chatmail-supervisor")
        logger.logLevel = Logger.Level(rawValue: configuration.supervisor.logLevel.rawValue) ?? .info

        umask(0o027)
        let group = MultiThreadedEventLoopGroup.singleton
        let programDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().path
        let supervisor: Supervisor
        let server: ControlServer
        do {
            try FileManager.default.createDirectory(
                atPath: configuration.supervisor.runtimeDir, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o750])
            let store = try StateStore(directory: configuration.supervisor.stateDir)
            supervisor = try Supervisor(
                configuration: configuration, store: store, notifier: notifier, logger: logger, group: group,
                programDirectory: programDirectory)
            server = try await ControlServer.start(
                path: configuration.supervisor.controlSocket, supervisor: supervisor, group: group, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            notifier.send(["STATUS": "cannot start: \(error)", "ERRNO": "5"])
            return 1
        }
        logger.info("control socket at \(server.path)")
        // Metrics are optional: a failed bind is logged and the children run all the same.
        var metrics: MetricsServer?
        if let address = configuration.supervisor.metricsListen {
            do {
                metrics = try await MetricsServer.start(
                    host: address.host, port: Int(address.port), supervisor: supervisor, group: group)
                logger.info("metrics at http://\(address)/metrics")
            } catch {
                logger.error("cannot serve metrics on \(address): \(error)")
            }
        }

        let signals = await UnixSignalsSequence(trapping: .sighup, .sigterm, .sigint)
        let signalTask = Task {
            for await signal in signals {
                if signal == .sighup {
                    _ = await supervisor.reload()
                } else {
                    await supervisor.shutdown()
                }
            }
        }
        await supervisor.run()
        signalTask.cancel()
        await metrics?.stop()
        await server.stop()
        logger.info("stopped")
        return 0
    }
}
