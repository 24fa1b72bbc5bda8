/// The life of one supervised child, as a pure state machine: events in, actions out. Time comes
/// in with every event (`now`), randomness as `randomUnit` in `0 ..< 1`; nothing here sleeps,
/// spawns, signals or logs. An event that returns `.spawn` must be followed at once by
/// `spawned` or `spawnFailed`.
public struct SidecarStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public enum Phase: Sendable, Equatable {
        /// Not running and not meant to: disabled, or stopped by the operator.
        case idle
        case notInstalled
        /// Exited with 78; waits for a reload or an explicit start.
        case configError
        case backoff(until: Instant)
        case starting(pid: Int32, since: Instant)
        case ready(pid: Int32, since: Instant, readyAt: Instant)
        case stopping(pid: Int32, since: Instant, killAt: Instant, killed: Bool, then: AfterStop)
    }

    /// What follows once a stopping child has exited.
    public enum AfterStop: Sendable, Equatable {
        case idle
        case restart
        /// It was stopped for failing (not ready in time): back off as after a crash.
        case failure
    }

    public enum Action: Sendable, Equatable {
        case none
        case spawn
        case terminate(pid: Int32)
        case kill(pid: Int32)
    }

    public enum Refusal: Error, Sendable, Equatable {
        case disabled
    }

    public private(set) var phase: Phase = .idle
    public private(set) var enabled: Bool
    /// Stopped by the operator: stays down until started again.
    public private(set) var held = false
    public private(set) var spawns = 0
    public private(set) var lastExit: ExitStatus?
    /// A human note for status: why it is not running, when it restarts.
    public private(set) var note: String?
    public var policy: RestartPolicy
    private var consecutiveFailures = 0
    private var failures: [Instant] = []

    public init(enabled: Bool, policy: RestartPolicy) {
        self.enabled = enabled
        self.policy = policy
    }

    /// Enabled and not held: it should be running.
    public var wanted: Bool { enabled && !held }

    /// The running process, if any.
    public var pid: Int32? {
        switch phase {
        case .starting(let pid, _), .ready(let pid, _, _), .stopping(let pid, _, _, _, _): pid
        default: nil
        }
    }

    public var isReady: Bool {
        if case .ready = phase { return true }
        return false
    }

    /// When `tick` next has something to do for this child: a backoff ends, the readiness
    /// deadline passes, or SIGKILL is due.
    public var nextDeadline: Instant? {
        switch phase {
        case .backoff(let until): until
        case .starting(_, let since): since.advanced(by: policy.readyTimeout)
        case .stopping(_, _, let killAt, false, _): killAt
        default: nil
        }
    }

    /// Restarts: every spawn after the first.
    public var restarts: Int { max(spawns - 1, 0) }

    /// True while `crashLoopLimit` or more failures fall within the crash-loop window.
    public func crashLooping(now: Instant) -> Bool {
        failures.filter { $0.duration(to: now) < policy.crashLoopWindow }.count >= policy.crashLoopLimit
    }

    /// Failed in a way a restart does not fix by itself (or crash-looping): it should not hold
    /// back the supervisor's readiness.
    public func isBroken(now: Instant) -> Bool {
        switch phase {
        case .notInstalled, .configError: true
        default: crashLooping(now: now)
        }
    }

    /// The state's name as status shows it.
    public var stateName: String {
        switch phase {
        case .idle: enabled ? "stopped" : "disabled"
        case .notInstalled: "not installed"
        case .configError: "config error"
        case .backoff: "backoff"
        case .starting: "starting"
        case .ready: "ready"
        case .stopping: "stopping"
        }
    }

    // MARK: Events

    /// The supervisor starts: spawn if wanted.
    public mutating func boot(now: Instant) -> Action {
        wanted && phase == .idle ? .spawn : .none
    }

    public mutating func spawned(pid: Int32, now: Instant) {
        spawns += 1
        note = nil
        phase = .starting(pid: pid, since: now)
    }

    /// The spawn failed; `notFound` means the program does not exist (not built or installed).
    public mutating func spawnFailed(notFound: Bool, reason: String, now: Instant, randomUnit: Double) {
        if notFound {
            phase = .notInstalled
            note = reason
        } else {
            failed(now: now, randomUnit: randomUnit, reason: reason)
        }
    }

    /// The child reported ready. Returns true when that changed its state.
    public mutating func becameReady(pid: Int32, now: Instant) -> Bool {
        guard case .starting(pid, let since) = phase else { return false }
        phase = .ready(pid: pid, since: since, readyAt: now)
        return true
    }

    public mutating func exited(pid: Int32, status: ExitStatus, now: Instant, randomUnit: Double) -> Action {
        guard self.pid == pid else { return .none }
        lastExit = status
        switch phase {
        case .stopping(_, _, _, _, .restart):
            phase = .idle
            return wanted ? .spawn : .none
        case .stopping(_, _, _, _, .idle):
            phase = .idle
        case .stopping(_, _, _, _, .failure):
            failed(now: now, randomUnit: randomUnit, reason: note)
        case .ready(_, _, let readyAt) where readyAt.duration(to: now) >= policy.stableAfter:
            consecutiveFailures = 0
            fallthrough
        default:
            if status == .configurationError {
                phase = .configError
                note = "configuration error (exit 78): fix it, then reload or start"
            } else {
                failed(now: now, randomUnit: randomUnit, reason: nil)
            }
        }
        return .none
    }

    /// Timers: the end of a backoff, the readiness deadline, the SIGKILL deadline.
    public mutating func tick(now: Instant) -> Action {
        switch phase {
        case .backoff(let until) where until <= now:
            return .spawn
        case .starting(let pid, let since) where since.duration(to: now) >= policy.readyTimeout:
            note = "not ready within \(format(policy.readyTimeout))"
            return beginStop(pid: pid, now: now, then: .failure)
        case .stopping(let pid, let since, let killAt, false, let then) where killAt <= now:
            phase = .stopping(pid: pid, since: since, killAt: killAt, killed: true, then: then)
            return .kill(pid: pid)
        default:
            return .none
        }
    }

    /// The operator starts it (clears a stop, retries a broken child at once).
    public mutating func start(now: Instant) throws(Refusal) -> Action {
        guard enabled else { throw .disabled }
        held = false
        switch phase {
        case .idle, .notInstalled, .configError, .backoff:
            phase = .idle
            return .spawn
        case .stopping(let pid, let since, let killAt, let killed, .idle):
            phase = .stopping(pid: pid, since: since, killAt: killAt, killed: killed, then: .restart)
            return .none
        case .starting, .ready, .stopping:
            return .none
        }
    }

    /// The operator stops it: it stays down until started, enabled or restarted.
    public mutating func stop(now: Instant) -> Action {
        held = true
        return bringDown(now: now)
    }

    /// The operator restarts it: stop (if running), then start without backoff.
    public mutating func restart(now: Instant) throws(Refusal) -> Action {
        guard enabled else { throw .disabled }
        held = false
        switch phase {
        case .starting(let pid, _), .ready(let pid, _, _):
            return beginStop(pid: pid, now: now, then: .restart)
        case .stopping(let pid, let since, let killAt, let killed, _):
            phase = .stopping(pid: pid, since: since, killAt: killAt, killed: killed, then: .restart)
            return .none
        case .idle, .notInstalled, .configError, .backoff:
            phase = .idle
            return .spawn
        }
    }

    public mutating func setEnabled(_ enabled: Bool, now: Instant) -> Action {
        self.enabled = enabled
        if enabled {
            held = false
            return phase == .idle ? .spawn : .none
        }
        return bringDown(now: now)
    }

    /// The configuration was reloaded; `changed` says whether this child's settings differ.
    /// Children that are broken are retried; changed running children are restarted.
    public mutating func reload(changed: Bool, now: Instant) -> Action {
        switch phase {
        case .notInstalled, .configError:
            phase = .idle
            consecutiveFailures = 0
            return wanted ? .spawn : .none
        case .starting(let pid, _) where changed, .ready(let pid, _, _) where changed:
            return beginStop(pid: pid, now: now, then: .restart)
        default:
            return .none
        }
    }

    // MARK: Helpers

    private mutating func bringDown(now: Instant) -> Action {
        switch phase {
        case .starting(let pid, _), .ready(let pid, _, _):
            return beginStop(pid: pid, now: now, then: .idle)
        case .stopping(let pid, let since, let killAt, let killed, _):
            phase = .stopping(pid: pid, since: since, killAt: killAt, killed: killed, then: .idle)
        case .backoff, .notInstalled, .configError, .idle:
            phase = .idle
        }
        return .none
    }

    private mutating func beginStop(pid: Int32, now: Instant, then: AfterStop) -> Action {
        phase = .stopping(pid: pid, since: now, killAt: now.advanced(by: policy.stopTimeout), killed: false, then: then)
        return .terminate(pid: pid)
    }

    private mutating func failed(now: Instant, randomUnit: Double, reason: String?) {
        consecutiveFailures += 1
        failures.append(now)
        failures.removeAll { $0.duration(to: now) >= policy.crashLoopWindow }
        let delay = policy.delay(afterFailures: consecutiveFailures, randomUnit: randomUnit)
        phase = .backoff(until: now.advanced(by: delay))
        note = [reason, "next start in \(format(delay))"].compactMap { $0 }.joined(separator: "; ")
    }

    private func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds < 10 ? "\((seconds * 10).rounded() / 10) s" : "\(Int(seconds.rounded())) s"
    }
}
