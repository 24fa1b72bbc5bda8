import CChatmailShims
import ChatmailConfig
import ChatmailControl
import ChatmailMetrics
import ChatmailSystemd
import ChatmailTLS
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import UnixSignals

/// Why a sidecar cannot serve, which decides its exit status (`Sidecar.exitStatus(for:)`) and so
/// what the supervisor does: wait for the operator, or retry with backoff.
public enum SidecarError: Error, CustomStringConvertible {
    /// A value in the configuration file the child cannot run with (an unparsable address, a
    /// missing required key, a certificate that does not match its key): exit 78, and the
    /// supervisor waits for a reload, since only an operator can fix it.
    case configuration(String)
    /// The system around the child, now (an address in use or not available, a runtime
    /// directory that is missing or not writable, a store that cannot be opened, a failed system
    /// call): exit 1, and the supervisor retries with backoff.
    case environment(String)

    public var description: String {
        switch self {
        case .configuration(let why): "configuration error: \(why)"
        case .environment(let why): why
        }
    }
}

/// The life of one child process, as `sidecars/README.md` describes it: the configuration from
/// `--config FILE`, the control channel from `CHATMAIL_CONTROL_FD` (none when run on its own),
/// `hello`, `ready`, pushed events, and shutdown on SIGTERM, SIGINT or the supervisor's going away.
///
///     await Sidecar.main(name: "turn") { sidecar in
///         let listener = try await bind(sidecar.configuration.turn.listen)
///         try await sidecar.ready()
///         for await event in sidecar.events { handle(event) }  // finishes at shutdown
///         try await listener.close()
///     }
public final class Sidecar: Sendable {
    /// The exit status for an unusable configuration (`EX_CONFIG`).
    public static let configurationErrorStatus: Int32 = 78
    /// The exit status for a command line that cannot be used (`EX_USAGE`).
    public static let usageErrorStatus: Int32 = 64

    public let name: String
    public let configuration: Configuration
    public let logger: Logger
    public let group: any EventLoopGroup
    /// What the supervisor pushes (TURN secrets, reloads), in order; finishes at shutdown.
    public let events: AsyncStream<ControlEvent>
    /// The per-source connection cap all TCP listeners of this child share
    /// (`max_connections_per_source` of its section); pass it to `Listeners.bind`.
    public let connectionLimit: SourceConnectionLimit

    private let control: ControlClient?
    private let continuation: AsyncStream<ControlEvent>.Continuation
    private let tlsProviders = Mutex<[TLSContextProvider]>([])
    private let metricsSource = Mutex<(@Sendable () async -> [Metric])?>(nil)

    init(
        name: String, configuration: Configuration, logger: Logger, group: any EventLoopGroup,
        control: ControlClient?
    ) {
        self.name = name
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.control = control
        (events, continuation) = AsyncStream.makeStream(of: ControlEvent.self)
        connectionLimit = SourceConnectionLimit(
            maxPerSource: configuration.child(name)?.maxConnectionsPerSource
                ?? ChildSettings.defaultMaxConnectionsPerSource,
            logger: logger)
    }

    /// Whether a supervisor runs this process (there is a control channel).
    public var isSupervised: Bool { control != nil }

    /// Tells the supervisor this child listens and serves; nothing when run on its own.
    public func ready() async throws {
        guard let control else { return }
        let answer = try await control.request(.ready)
        if !answer.ok { throw ControlClient.Failure(description: answer.error ?? "ready refused") }
        logger.info("ready")
    }

    /// The supervisor's answer to `command` (such as `.shadowsocksKey`); nil when run on its own.
    public func request(_ command: ControlCommand, timeout: TimeAmount = .seconds(10)) async throws
        -> ControlResponse?
    {
        try await control?.request(command, timeout: timeout)
    }

    /// What the supervisor says to serve as discovery (to `account`); empty when run on its own or when
    /// the supervisor does not answer within `timeout`.
    public func discovery(account: String? = nil, timeout: TimeAmount = .seconds(2)) async -> Discovery {
        guard let control else { return Discovery() }
        do {
            let answer = try await control.request(.discovery(account: account), timeout: timeout)
            return answer.discovery ?? Discovery()
        } catch {
            logger.warning("no discovery from the supervisor: \(error)")
            return Discovery()
        }
    }

    /// A TLS context provider for `[tls]` (a development certificate in state_dir when the
    /// configuration asks for one), reloaded from the configuration file on every `.reload`
    /// event before the event is passed on. A broken new certificate keeps the old one.
    /// Under a supervisor the development certificate is only read (the supervisor made it
    /// before starting the child); run on its own, the child makes it if missing.
    public func tlsProvider(alpn: [String] = []) throws -> TLSContextProvider {
        let provider = try TLSContextProvider(configuration: configuration, alpn: alpn, creating: !isSupervised)
        tlsProviders.withLock { $0.append(provider) }
        return provider
    }

    /// Re-reads the configuration file and gives every TLS provider its certificates again.
    func reloadTLS() {
        let providers = tlsProviders.withLock { $0 }
        guard !providers.isEmpty else { return }
        do {
            let identities = try tlsIdentities(Configuration.load(path: configuration.path))
            for provider in providers { try provider.reload(identities: identities) }
            logger.info("TLS certificates reloaded")
        } catch {
            logger.error("TLS reload refused, keeping the certificates in use: \(error)")
        }
    }

    private func tlsIdentities(_ configuration: Configuration) throws(TLSError) -> [TLSIdentity] {
        try TLSIdentity.configured(by: configuration, creating: !isSupervised)
    }

    /// Names what this child's counters are, for the supervisor's `/metrics`: `source` is asked at each scrape
    /// (from a task of its own, so a busy body does not hold the answer up).
    public func reportMetrics(_ source: @escaping @Sendable () async -> [Metric]) {
        metricsSource.withLock { $0 = source }
    }

    /// Passes `event` on to `events` (after reloading TLS for `.reload`); answers `.collectMetrics` itself.
    func deliver(_ event: ControlEvent) {
        if case .collectMetrics(let scrape) = event {
            let source = metricsSource.withLock { $0 }
            Task { [control] in
                let samples = await source?() ?? []
                _ = try? await control?.request(.metrics(scrape: scrape, samples: samples), timeout: .seconds(5))
            }
            return
        }
        if event == .reload { reloadTLS() }
        continuation.yield(event)
    }

    /// Ends `events`: the body should close its listeners and return.
    func shutdown() {
        continuation.finish()
    }
}

extension Sidecar {
    /// Runs a sidecar process from its command line to its exit: loads the configuration, sets up
    /// logging and the control channel, says hello, runs `body` and exits with its outcome
    /// (0 when it returns, else `exitStatus(for:)` of the error).
    public static func main(
        name: String, arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        _ body: @Sendable (Sidecar) async throws -> Void
    ) async -> Never {
        cm_tune_malloc()
        JournalLogging.bootstrap(identifier: "chatmail-\(name)", environment: environment)
        exit(await run(name: name, arguments: arguments, environment: environment, body))
    }

    /// `main` without the exit: returns the exit status. Tests pass `handlingSignals: false`
    /// so that the test process keeps its own signal dispositions.
    static func run(
        name: String, arguments: [String], environment: [String: String], handlingSignals: Bool = true,
        _ body: @Sendable (Sidecar) async throws -> Void
    ) async -> Int32 {
        let program = "chatmail-\(name)"
        guard let path = configurationPath(in: Array(arguments.dropFirst())) else {
            FileHandle.standardError.write(Data("usage: \(program) --config FILE\n".utf8))
            return usageErrorStatus
        }
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: path)
        } catch {
            FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
            return exitStatus(for: error)
        }
        var logger = Logger(label: program)
        logger.logLevel = Logger.Level(rawValue: configuration.supervisor.logLevel.rawValue) ?? .info
        LogPrivacy.noLog = configuration.supervisor.noLog
        raiseDescriptorLimit(logger: logger)

        let group = MultiThreadedEventLoopGroup.singleton
        let control: ControlClient?
        do {
            control = try await adoptControlChannel(environment["CHATMAIL_CONTROL_FD"], name: name, group: group)
        } catch {
            logger.critical("cannot speak to the supervisor: \(error)")
            return 1
        }
        let sidecar = Sidecar(name: name, configuration: configuration, logger: logger, group: group, control: control)

        let signalTask = Task {
            guard handlingSignals else { return }
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup) {
                if signal == .sighup {
                    sidecar.deliver(.reload)
                } else {
                    logger.info("stopping on \(signal)")
                    sidecar.shutdown()
                }
            }
        }
        let controlTask = Task {
            guard let control else { return }
            for await event in control.events { sidecar.deliver(event) }
            logger.info("the supervisor closed the control channel: stopping")
            sidecar.shutdown()
        }
        defer {
            signalTask.cancel()
            controlTask.cancel()
        }

        do {
            try await body(sidecar)
            await control?.close()
            logger.info("stopped")
            return 0
        } catch {
            let status = exitStatus(for: error)
            logger.critical(
                "\(status == configurationErrorStatus ? "" : "stopped by an error: ")\(error)",
                metadata: ["exit": "\(status)"])
            return status
        }
    }

    /// The one place that decides a child's exit status for an error that stopped it: 78 for
    /// `SidecarError.configuration` and a configuration file that does not load (only an operator
    /// can fix those; the supervisor waits), 1 for everything else (the supervisor retries).
    public static func exitStatus(for error: any Error) -> Int32 {
        switch error {
        case SidecarError.configuration, is ConfigurationErrors: configurationErrorStatus
        default: 1
        }
    }

    /// Raises the soft limit on open files to the hard limit (what the unit allows: LimitNOFILE=),
    /// so that connections, not the default 1024, are what runs out; logs what it is.
    static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        #if os(Linux)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return }
        let soft = limit.rlim_cur
        if soft < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            if setrlimit(resource, &limit) != 0 {
                logger.warning(
                    "cannot raise the file descriptor limit: \(String(cString: strerror(errno)))",
                    metadata: ["soft": "\(soft)", "hard": "\(limit.rlim_max)"])
                return
            }
        }
        logger.info(
            "file descriptor limit", metadata: ["limit": "\(limit.rlim_cur)", "was": "\(soft)"])
    }

    /// The control channel named by `CHATMAIL_CONTROL_FD`, after a successful hello; nil without one.
    static func adoptControlChannel(
        _ fd: String?, name: String, group: any EventLoopGroup
    ) async throws -> ControlClient? {
        guard let fd else { return nil }
        guard let descriptor = CInt(fd), descriptor >= 0 else {
            throw ControlClient.Failure(description: "CHATMAIL_CONTROL_FD=\(fd) is not a descriptor")
        }
        let client = try await ControlClient.adopt(descriptor: descriptor, group: group)
        let answer = try await client.request(.hello(name: name, pid: getpid()))
        guard answer.ok else { throw ControlClient.Failure(description: answer.error ?? "hello refused") }
        return client
    }

    /// The value of `--config FILE` or `--config=FILE`, the only argument a sidecar takes.
    static func configurationPath(in arguments: [String]) -> String? {
        switch arguments.count {
        case 1 where arguments[0].hasPrefix("--config="): String(arguments[0].dropFirst("--config=".count))
        case 2 where arguments[0] == "--config": arguments[1]
        default: nil
        }
    }
}

extension Sidecar {
    /// The common tail of every child's body: tells the supervisor it is ready, passes each event
    /// to `handle` until shutdown, then runs `close` (stop listening, end connections):
    ///
    ///     try await sidecar.serveUntilShutdown(onEvent: { event in … }) { await server.close() }
    public func serveUntilShutdown(
        onEvent handle: (ControlEvent) async -> Void = { _ in }, closing close: () async -> Void
    ) async throws {
        try await ready()
        for await event in events { await handle(event) }
        await close()
    }

    /// `serveUntilShutdown` closing `listeners` at the end.
    public func serveUntilShutdown(
        _ listeners: ListenerSet, onEvent handle: (ControlEvent) async -> Void = { _ in }
    ) async throws {
        try await serveUntilShutdown(onEvent: handle) { await listeners.close() }
    }
}
