import CChatmailShims
import ChatmailConfig
import ChatmailControl
import ChatmailMetrics
import ChatmailState
import ChatmailSupervisorCore
import ChatmailSystemd
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import ShadowsocksCore

/// Runs the children: one `SidecarStateMachine` each, whose actions this actor carries out
/// (spawn, signal), and whose events it feeds (exits, readiness, operator commands, timers).
/// It answers the control channel and keeps systemd informed.
public actor Supervisor {
    typealias Machine = SidecarStateMachine<ContinuousClock.Instant>

    /// Who sent a control request.
    enum Peer: Sendable {
        /// A child, on the channel it inherited.
        case child(name: String, pid: Int32, channel: any Channel)
        case admin
    }

    struct Child {
        let name: String
        var machine: Machine
        var control: (any Channel)?
        var exitWatch: (any DispatchSourceRead)?
    }

    /// Someone waiting for a child to come up (`start/restart --wait`) or go down (`stop --wait`).
    private struct Waiter {
        enum Goal { case ready(replacing: Int32?), down }
        let id: Int
        let name: String
        let goal: Goal
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<String?, Never>
    }

    private var configuration: Configuration
    private let store: StateStore
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let group: any EventLoopGroup
    private let programDirectory: String
    private let clock = ContinuousClock()
    private let exitQueue = DispatchQueue(label: "chatmail.child-exits")
    private var children: [String: Child] = [:]
    private var turnSecrets: [String]
    /// When the TURN secrets were last checked for ones no live credential needs any more.
    private var turnSecretsChecked: ContinuousClock.Instant
    private var waiters: [Waiter] = []
    private var nextWaiterID = 0
    private var readySent = false
    private var lastStatusLine = ""
    private let watchdogInterval: Duration?
    /// Whether our stderr is the journal (we run under systemd): each child then gets a stream of its own.
    private let journalAvailable = JournalLogging.isJournal(environment: ProcessInfo.processInfo.environment)
    private var lastWatchdog: ContinuousClock.Instant?
    private var shuttingDown = false
    private var finished = false
    /// Scrapes waiting for a child's counters, by scrape number (`Supervisor+Metrics.swift`).
    var metricWaiters: [Int: (name: String, continuation: CheckedContinuation<[Metric]?, Never>)] = [:]
    var nextScrape = 0

    /// - Parameters:
    ///   - programDirectory: where `chatmail-<name>` is looked for when a child has no `command`.
    public init(
        configuration: Configuration, store: StateStore, notifier: SystemdNotifier, logger: Logger,
        group: any EventLoopGroup, programDirectory: String
    ) throws {
        self.configuration = configuration
        self.store = store
        self.notifier = notifier
        self.logger = logger
        self.group = group
        self.programDirectory = programDirectory
        self.turnSecrets = try store.turnSecrets(ttl: configuration.turn.credentialTTL)
        self.turnSecretsChecked = clock.now
        self.watchdogInterval = notifier.watchdogInterval
        let saved = try store.savedToggles()
        for (name, settings) in configuration.children {
            let enabled = saved[name] ?? settings.enabled
            children[name] = Child(
                name: name, machine: Machine(enabled: enabled, policy: Self.policy(configuration, settings)))
        }
    }

    private static func policy(_ configuration: Configuration, _ settings: ChildSettings) -> RestartPolicy {
        let s = configuration.supervisor
        return RestartPolicy(
            minimumDelay: .seconds(s.restartDelayMin), maximumDelay: .seconds(s.restartDelayMax),
            stableAfter: .seconds(s.stableAfter), crashLoopWindow: .seconds(s.crashLoopWindow),
            crashLoopLimit: s.crashLoopLimit, readyTimeout: .seconds(s.readyTimeout),
            stopTimeout: .seconds(settings.stopTimeout))
    }

    // MARK: Running

    /// Starts the enabled children in order (sidecars first, IMAP last), then supervises until
    /// `shutdown()` has stopped them all.
    public func run() async {
        SharedState.prepare(configuration, store: store, logger: logger)
        let now = clock.now
        for name in Configuration.childNames {
            perform(children[name]!.machine.boot(now: now), on: name)
        }
        publishStatus()
        // A heartbeat for the watchdog and waiter deadlines; child timers also wake `tick` on
        // their own (see `perform`), so a restart does not wait for the heartbeat.
        let heartbeat = min(.milliseconds(500), (watchdogInterval ?? .seconds(1)) / 4)
        while !finished {
            tick()
            try? await Task.sleep(for: heartbeat)
        }
    }

    /// One turn of the supervision loop: timers of every child, waiter deadlines, the watchdog.
    private func tick() {
        let now = clock.now
        for name in Configuration.childNames {
            perform(children[name]!.machine.tick(now: now), on: name)
        }
        for waiter in waiters where waiter.deadline <= now {
            resolve(waiter, "timed out waiting for \(waiter.name)")
        }
        if turnSecretsChecked.duration(to: now) >= .seconds(60) {
            turnSecretsChecked = now
            pruneTURNSecrets()
        }
        if let watchdogInterval, lastWatchdog.map({ $0.duration(to: now) >= watchdogInterval / 2 }) ?? true {
            notifier.watchdog()
            lastWatchdog = now
        }
        publishStatus()
    }

    /// Makes sure `tick` runs when `deadline` comes, however long the heartbeat sleeps.
    private func wake(at deadline: ContinuousClock.Instant?) {
        guard let deadline, deadline > clock.now else { return }
        Task {
            try? await Task.sleep(until: deadline, clock: clock)
            tick()
        }
    }

    /// Stops every child in reverse start order (IMAP first), each waited for, then ends `run()`.
    public func shutdown() async {
        guard !shuttingDown else { return }
        shuttingDown = true
        notifier.stopping()
        logger.info("shutting down")
        for name in Configuration.childNames.reversed() {
            let now = clock.now
            perform(children[name]!.machine.stop(now: now), on: name)
            if children[name]!.machine.pid != nil {
                _ = await wait(
                    for: name, goal: .down, timeout: children[name]!.machine.policy.stopTimeout + .seconds(5))
            }
        }
        finished = true
    }

    /// Re-reads the configuration file; children whose settings changed are restarted, toggled
    /// ones started or stopped, broken ones retried. A bad file changes nothing.
    public func reload() -> ControlResponse {
        notifier.reloading()
        defer {
            readySent = false
            publishStatus()
        }
        let next: Configuration
        do {
            next = try Configuration.load(path: configuration.path)
        } catch {
            logger.error("reload refused, keeping the running configuration: \(error)")
            return .failure(0, "the configuration has errors, nothing changed:\n\(error)")
        }
        SharedState.prepare(next, store: store, logger: logger)
        let now = clock.now
        let previous = configuration
        configuration = next
        var restarted: [String] = []
        let saved = (try? store.savedToggles()) ?? [:]
        for (name, settings) in next.children {
            children[name]!.machine.policy = Self.policy(next, settings)
            let enabled = saved[name] ?? settings.enabled
            if enabled != children[name]!.machine.enabled {
                perform(children[name]!.machine.setEnabled(enabled, now: now), on: name)
            }
            let changed = next.childSettingsDiffer(from: previous, child: name)
            let action = children[name]!.machine.reload(changed: changed, now: now)
            if case .terminate = action { restarted.append(name) }
            perform(action, on: name)
        }
        for child in children.values { child.control.map { push(.reload, to: $0) } }
        logger.info("configuration reloaded", metadata: ["restarted": "\(restarted)"])
        return ControlResponse(
            id: 0, message: restarted.isEmpty ? "reloaded" : "reloaded; restarting \(restarted.joined(separator: ", "))"
        )
    }

    // MARK: Actions

    private func perform(_ action: Machine.Action, on name: String) {
        switch action {
        case .none: break
        case .spawn: spawn(name)
        case .terminate(let pid):
            logger.info("stopping \(name)", metadata: ["pid": "\(pid)"])
            ChildProcess.signal(group: pid, SIGTERM)
        case .kill(let pid):
            logger.warning("\(name) did not stop in time, killing it", metadata: ["pid": "\(pid)"])
            ChildProcess.signal(group: pid, SIGKILL)
        }
        if action != .none { wake(at: children[name]!.machine.nextDeadline) }
        settleWaiters()
    }

    private func command(for name: String) -> [String] {
        configuration.child(name)?.command ?? [programDirectory + "/chatmail-\(name)"]
    }

    private func spawn(_ name: String) {
        guard !shuttingDown else { return logger.info("not starting \(name): shutting down") }
        let now = clock.now
        func failed(notFound: Bool, _ reason: String) {
            if !notFound {
                logger.error("\(reason)")
            } else if children[name]!.machine.phase != .notInstalled {
                logger.warning("\(reason)")
            }
            children[name]!.machine.spawnFailed(
                notFound: notFound, reason: reason, now: now, randomUnit: .random(in: 0..<1))
            wake(at: children[name]!.machine.nextDeadline)
        }
        let argv = command(for: name) + ["--config", configuration.path]
        var pair: [Int32] = [-1, -1]
        guard cm_socketpair(&pair) == 0 else {
            return failed(notFound: false, "cannot start \(name): socketpair: \(String(cString: strerror(errno)))")
        }
        // The child's end must not already be fd 3 (see cm_spawn).
        if pair[1] == 3 {
            let moved = fcntl(3, F_DUPFD_CLOEXEC, 10)
            close(3)
            pair[1] = moved
        }
        var environment = childEnvironment(name)
        let journal = openJournalStream(for: name)
        if let journal { environment["JOURNAL_STREAM"] = JournalLogging.journalStreamValue(of: journal) }
        defer { if let journal { close(journal) } }
        let pid: Int32
        do {
            pid = try ChildProcess.spawn(
                argv: argv, environment: environment, controlFD: pair[1], outputFD: journal ?? -1)
        } catch {
            close(pair[0])
            close(pair[1])
            return failed(notFound: error.notFound, error.description)
        }
        close(pair[1])
        children[name]!.machine.spawned(pid: pid, now: now)
        logger.info("started \(name)", metadata: ["pid": "\(pid)", "command": "\(argv.joined(separator: " "))"])
        children[name]!.exitWatch = ChildProcess.watch(pid: pid, queue: exitQueue) { status in
            Task { await self.childExited(name: name, pid: pid, status: status) }
        }
        if children[name]!.exitWatch == nil {
            logger.critical(
                "cannot watch \(name) (pidfd_open: \(String(cString: strerror(errno)))); its exit will go unseen")
        }
        let parentEnd = pair[0]
        Task { await self.attachControl(name: name, pid: pid, descriptor: parentEnd) }
    }

    /// Under systemd (our stderr is the journal), a journal stream of the child's own, so that its
    /// lines appear under `chatmail-NAME` with their priorities. Nil otherwise: the child inherits
    /// our stdout and stderr and our `JOURNAL_STREAM` (which still names its stderr when only the
    /// stream could not be opened: its lines then keep their priorities under our identifier).
    private func openJournalStream(for name: String) -> Int32? {
        guard journalAvailable else { return nil }
        guard let fd = JournalLogging.openStream(identifier: "chatmail-\(name)") else {
            logger.warning("cannot open a journal stream for \(name): \(String(cString: strerror(errno)))")
            return nil
        }
        return fd
    }

    /// The environment of a child: ours, minus what systemd meant for us alone, plus the control fd.
    private func childEnvironment(_ name: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
            environment[key] = nil
        }
        environment["CHATMAIL_CONTROL_FD"] = "3"
        environment["CHATMAIL_CHILD_NAME"] = name
        environment["CHATMAIL_CONFIG"] = configuration.path
        return environment
    }

    private func attachControl(name: String, pid: Int32, descriptor: Int32) async {
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try ControlConnectionHandler.install(
                    on: channel, peer: .child(name: name, pid: pid, channel: channel), supervisor: self)
            }
        }
        do {
            let channel = try await bootstrap.withConnectedSocket(descriptor).get()
            if children[name]?.machine.pid == pid {
                children[name]!.control = channel
            } else {
                try? await channel.close()
            }
        } catch {
            close(descriptor)
            logger.error("cannot open the control channel of \(name): \(error)")
        }
    }

    private func childExited(name: String, pid: Int32, status: ExitStatus) {
        guard var child = children[name], child.machine.pid == pid else { return }
        child.exitWatch = nil
        if let control = child.control {
            control.close(promise: nil)
            child.control = nil
        }
        let wasStopping = if case .stopping = child.machine.phase { true } else { false }
        let action = child.machine.exited(pid: pid, status: status, now: clock.now, randomUnit: .random(in: 0..<1))
        children[name] = child
        if wasStopping {
            logger.info("\(name) stopped", metadata: ["pid": "\(pid)", "status": "\(status)"])
        } else {
            logger.warning(
                "\(name) exited unexpectedly",
                metadata: ["pid": "\(pid)", "status": "\(status)", "next": "\(child.machine.note ?? "")"])
        }
        perform(action, on: name)
        wake(at: children[name]!.machine.nextDeadline)
        publishStatus()
    }

    // MARK: Waiting

    private func wait(for name: String, goal: Waiter.Goal, timeout: Duration) async -> String? {
        await withCheckedContinuation { continuation in
            nextWaiterID += 1
            waiters.append(
                Waiter(
                    id: nextWaiterID, name: name, goal: goal, deadline: clock.now + timeout, continuation: continuation)
            )
            settleWaiters()
        }
    }

    private func settleWaiters() {
        for waiter in waiters {
            let machine = children[waiter.name]!.machine
            switch (waiter.goal, machine.phase) {
            case (.ready(let old), .ready(let pid, _, _)) where pid != old:
                resolve(waiter, nil)
            case (.ready, .backoff), (.ready, .configError), (.ready, .notInstalled), (.ready, .idle):
                resolve(waiter, "\(waiter.name) is \(machine.stateName)" + (machine.note.map { ": \($0)" } ?? ""))
            case (.down, _) where machine.pid == nil:
                resolve(waiter, nil)
            default:
                break
            }
        }
    }

    private func resolve(_ waiter: Waiter, _ failure: String?) {
        guard let index = waiters.firstIndex(where: { $0.id == waiter.id }) else { return }
        waiters.remove(at: index)
        waiter.continuation.resume(returning: failure)
    }

    // MARK: Status

    /// The control channel of child `name`'s current process, once it is attached.
    func controlChannel(of name: String) -> (any Channel)? { children[name]?.control }

    func status() -> SupervisorStatus {
        let now = clock.now
        return SupervisorStatus(
            sidecars: Configuration.childNames.map { name in
                let machine = children[name]!.machine
                var uptime: Double?
                switch machine.phase {
                case .starting(_, let since), .ready(_, let since, _), .stopping(_, let since, _, _, _):
                    uptime = (since.duration(to: now).seconds * 10).rounded() / 10
                default: break
                }
                return SidecarStatus(
                    name: name, state: machine.stateName, enabled: machine.enabled, pid: machine.pid, uptime: uptime,
                    restarts: machine.restarts, lastExit: machine.lastExit?.description,
                    listen: configuration.child(name)!.listen.map(\.description),
                    crashLooping: machine.crashLooping(now: now), message: machine.note,
                    ports: configuration.firewallPorts(child: name).map(\.short))
            })
    }

    /// Sends systemd STATUS= when it changed, and READY=1 once every wanted child is ready (or
    /// broken beyond a restart: not installed, configuration error, crash-looping).
    private func publishStatus() {
        let now = clock.now
        let line = Configuration.childNames.map { name in
            let machine = children[name]!.machine
            return "\(name) \(machine.stateName)" + (machine.crashLooping(now: now) ? " (crash loop)" : "")
        }.joined(separator: ", ")
        let allUp = children.values.allSatisfy {
            !$0.machine.wanted || $0.machine.isReady || $0.machine.isBroken(now: now)
        }
        if !readySent && allUp && !shuttingDown {
            readySent = true
            lastStatusLine = line
            notifier.ready(status: line)
            logger.info("ready: \(line)")
        } else if line != lastStatusLine {
            lastStatusLine = line
            notifier.status(line)
        }
    }

    // MARK: Control requests

    func handle(_ request: ControlRequest, from peer: Peer) async -> ControlResponse {
        var response = await answer(request.command, from: peer)
        response.id = request.id
        return response
    }

    private func answer(_ command: ControlCommand, from peer: Peer) async -> ControlResponse {
        switch (command, peer) {
        case (.hello(let name, _), .child(let childName, let pid, let channel)):
            guard name == childName else { return .failure(0, "this channel belongs to \(childName), not \(name)") }
            if name == "turn", children[name]?.machine.pid == pid {
                push(.turnSecrets(turnSecrets), to: channel)
            }
            return ControlResponse(id: 0)
        case (.ready, .child(let name, let pid, _)):
            if children[name]!.machine.becameReady(pid: pid, now: clock.now) {
                logger.info("\(name) is ready", metadata: ["pid": "\(pid)"])
                settleWaiters()
                publishStatus()
            }
            return ControlResponse(id: 0)
        case (.discovery(let account), _):
            return ControlResponse(id: 0, discovery: discovery(account: account))
        case (.status, .admin):
            return ControlResponse(id: 0, status: status())
        case (.start(let name, let wait), .admin):
            return await operate(name, wait: wait) { machine, now in try machine.start(now: now) }
        case (.restart(let name, let wait), .admin):
            return await operate(name, wait: wait) { machine, now in try machine.restart(now: now) }
        case (.stop(let name, let wait), .admin):
            return await operate(name, wait: wait) { machine, now in machine.stop(now: now) }
        case (.enable(let name), .admin), (.disable(let name), .admin):
            let enable = if case .enable = command { true } else { false }
            guard let key = SavedToggles.keys[name] else {
                return .failure(
                    0, children[name] == nil ? unknown(name) : "\(name) cannot be toggled at run time; use stop/start")
            }
            do {
                try store.setToggle(key, enable)
            } catch {
                return .failure(0, "cannot save the setting: \(error)")
            }
            logger.info("\(enable ? "enabled" : "disabled") \(name)")
            perform(children[name]!.machine.setEnabled(enable, now: clock.now), on: name)
            publishStatus()
            return ControlResponse(id: 0, message: "\(name) \(enable ? "enabled" : "disabled")")
        case (.reload, .admin):
            return reload()
        case (.rotateTURNSecret, .admin):
            let cutShort: Int
            do {
                let rotated = try store.rotateTURNSecret(ttl: configuration.turn.credentialTTL)
                (turnSecrets, cutShort) = (rotated.secrets, rotated.cutShort)
            } catch {
                return .failure(0, "cannot rotate the TURN secret: \(error)")
            }
            logger.info("TURN secret rotated", metadata: ["kept": "\(turnSecrets.count)"])
            if let channel = children["turn"]?.control { push(.turnSecrets(turnSecrets), to: channel) }
            let message =
                cutShort == 0
                ? "TURN secret rotated; credentials already issued stay valid until they expire"
                : "TURN secret rotated; \(StateStore.maximumTURNSecrets) secrets are kept at most, so credentials "
                    + "from the oldest \(cutShort) stop working now"
            return ControlResponse(id: 0, message: message)
        case (.shadowsocksKey(let method), .admin), (.shadowsocksKey(let method), .child("shadowsocks", _, _)):
            guard let method = ShadowsocksMethod(rawValue: method) else {
                return .failure(0, "unknown Shadowsocks method \"\(method)\"")
            }
            do {
                return ControlResponse(id: 0, key: try SharedState.shadowsocksKey(for: method, in: store))
            } catch {
                return .failure(0, "cannot read or make the Shadowsocks key: \(error)")
            }
        case (.metrics(let scrape, let samples), .child(let name, _, _)):
            finishScrape(scrape, from: name, samples)
            return ControlResponse(id: 0)
        case (.metrics, .admin):
            return .failure(0, "only children report metrics")
        case (_, .child(let name, _, _)):
            return .failure(0, "\(command) is not allowed on \(name)'s channel")
        case (.hello, .admin), (.ready, .admin):
            return .failure(0, "only children say hello and ready")
        }
    }

    private func unknown(_ name: String) -> String {
        "unknown sidecar \"\(name)\" (known: \(Configuration.childNames.joined(separator: ", ")))"
    }

    /// Applies an operator command to child `name`, then (with `wait`) waits for its outcome.
    private func operate(
        _ name: String, wait: Bool, _ event: (inout Machine, ContinuousClock.Instant) throws -> Machine.Action
    ) async -> ControlResponse {
        guard children[name] != nil else { return .failure(0, unknown(name)) }
        let oldPid = children[name]!.machine.pid
        let action: Machine.Action
        do {
            action = try event(&children[name]!.machine, clock.now)
        } catch {
            return .failure(0, "\(name) is disabled; enable it first (chatmailctl enable \(name))")
        }
        perform(action, on: name)
        publishStatus()
        guard wait else { return ControlResponse(id: 0, message: "\(name) \(children[name]!.machine.stateName)") }
        let machine = children[name]!.machine
        let goal: Waiter.Goal = machine.held ? .down : .ready(replacing: action == .none ? nil : oldPid)
        let timeout = machine.policy.stopTimeout + machine.policy.readyTimeout + .seconds(5)
        if let failure = await self.wait(for: name, goal: goal, timeout: timeout) { return .failure(0, failure) }
        let after = children[name]!.machine
        return ControlResponse(id: 0, message: "\(name) \(after.stateName)" + (after.pid.map { " (pid \($0))" } ?? ""))
    }

    /// Drops the TURN secrets whose credentials have all expired, and tells the TURN child.
    private func pruneTURNSecrets() {
        do {
            let secrets = try store.turnSecrets(ttl: configuration.turn.credentialTTL)
            guard secrets != turnSecrets else { return }
            turnSecrets = secrets
            logger.info("TURN secrets whose credentials have expired dropped", metadata: ["kept": "\(secrets.count)"])
            if let channel = children["turn"]?.control { push(.turnSecrets(secrets), to: channel) }
        } catch {
            logger.warning("cannot read the TURN secrets: \(error)")
        }
    }

    /// What the IMAP child serves (to `account`): TURN (and TURNS with a TLS listener) and iroh, each only while
    /// enabled and ready.
    func discovery(account: String? = nil) -> Discovery {
        var discovery = Discovery()
        if let turn = children["turn"]?.machine, turn.wanted, turn.isReady, let secret = turnSecrets.first {
            let (now, ttl) = (Int(Date().timeIntervalSince1970), configuration.turn.credentialTTL)
            let credential =
                account.map { TURNCredential(secret: secret, account: $0, now: now, ttl: ttl) }
                ?? TURNCredential(secret: secret, now: now, ttl: ttl)
            let turnSection = configuration.turn
            (discovery.turn, discovery.turns) = credential.discoveryValues(
                host: turnSection.host, port: turnSection.port,
                tlsPort: configuration.turnServesTLS ? turnSection.tlsPort : nil, preferTLS: turnSection.preferTLS)
        }
        if let iroh = children["iroh"]?.machine, iroh.wanted, iroh.isReady {
            discovery.irohRelay = configuration.iroh.url
        }
        return discovery
    }

    nonisolated func push(_ event: ControlEvent, to channel: any Channel) {
        channel.writeLine(ControlCodec.encode(event)).whenFailure { _ in }
    }
}
