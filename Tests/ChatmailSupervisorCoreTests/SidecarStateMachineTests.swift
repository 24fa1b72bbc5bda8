import ChatmailSupervisorCore
import Testing

/// A clock reading for tests: seconds on a line, advanced by hand.
struct MockInstant: InstantProtocol, Sendable {
    var offset: Duration
    func advanced(by duration: Duration) -> MockInstant { MockInstant(offset: offset + duration) }
    func duration(to other: MockInstant) -> Duration { other.offset - offset }
    static func < (lhs: MockInstant, rhs: MockInstant) -> Bool { lhs.offset < rhs.offset }
    static func at(_ seconds: Double) -> MockInstant { MockInstant(offset: .seconds(seconds)) }
}

typealias Machine = SidecarStateMachine<MockInstant>

let testPolicy = RestartPolicy(
    minimumDelay: .seconds(1), maximumDelay: .seconds(8), multiplier: 2, jitter: 0.5, stableAfter: .seconds(30),
    crashLoopWindow: .seconds(60), crashLoopLimit: 4, readyTimeout: .seconds(10), stopTimeout: .seconds(5))

/// Boots an enabled machine and brings pid `pid` to ready at time `t`.
func readyMachine(pid: Int32 = 100, at t: Double = 0) -> Machine {
    var machine = Machine(enabled: true, policy: testPolicy)
    #expect(machine.boot(now: .at(t)) == .spawn)
    machine.spawned(pid: pid, now: .at(t))
    #expect(machine.becameReady(pid: pid, now: .at(t)) == true)
    return machine
}

@Suite struct SidecarStateMachineTests {
    @Test func disabledChildIsNotStarted() {
        var machine = Machine(enabled: false, policy: testPolicy)
        #expect(machine.boot(now: .at(0)) == .none)
        #expect(machine.stateName == "disabled")
        #expect(throws: Machine.Refusal.disabled) { try machine.start(now: .at(1)) }
    }

    @Test func crashBacksOffThenRestarts() {
        var machine = readyMachine()
        #expect(machine.exited(pid: 100, status: .signaled(9), now: .at(5), randomUnit: 0) == .none)
        #expect(machine.phase == .backoff(until: .at(6)))
        #expect(machine.lastExit == .signaled(9))
        #expect(machine.tick(now: .at(5.9)) == .none)
        #expect(machine.tick(now: .at(6)) == .spawn)
        machine.spawned(pid: 101, now: .at(6))
        #expect(machine.restarts == 1)
        #expect(machine.stateName == "starting")
    }

    @Test func backoffSequenceGrowsWithConsecutiveFailuresAndJitter() {
        var machine = readyMachine()
        var now = 0.0
        var pid: Int32 = 100
        var delays: [Double] = []
        for _ in 0..<5 {
            now += 1
            _ = machine.exited(pid: pid, status: .exited(1), now: .at(now), randomUnit: 0.5)
            guard case .backoff(let until) = machine.phase else { Issue.record("not in backoff"); return }
            delays.append(MockInstant.at(now).duration(to: until).seconds)
            now = until.offset.seconds
            #expect(machine.tick(now: .at(now)) == .spawn)
            pid += 1
            machine.spawned(pid: pid, now: .at(now))
        }
        // 1, 2, 4, 8, 8 (the maximum) seconds, each stretched by jitter 0.5 × 0.5 = 25 %.
        #expect(delays == [1.25, 2.5, 5, 10, 10])
    }

    @Test func stableReadyPeriodResetsTheBackoff() {
        var machine = readyMachine()
        _ = machine.exited(pid: 100, status: .exited(1), now: .at(1), randomUnit: 0)
        _ = machine.tick(now: .at(2))
        machine.spawned(pid: 101, now: .at(2))
        _ = machine.becameReady(pid: 101, now: .at(2))
        _ = machine.exited(pid: 101, status: .exited(1), now: .at(3), randomUnit: 0)
        #expect(machine.phase == .backoff(until: .at(5)), "second consecutive failure: 2 s")
        _ = machine.tick(now: .at(5))
        machine.spawned(pid: 102, now: .at(5))
        _ = machine.becameReady(pid: 102, now: .at(5))
        _ = machine.exited(pid: 102, status: .exited(1), now: .at(40), randomUnit: 0)
        #expect(machine.phase == .backoff(until: .at(41)), "ready for 35 s > stableAfter: back to 1 s")
    }

    @Test func crashLoopWindowCountsRecentFailuresOnly() {
        var machine = readyMachine()
        var pid: Int32 = 100
        for second in [1.0, 10, 20, 30] {
            #expect(!machine.crashLooping(now: .at(second)))
            _ = machine.exited(pid: pid, status: .exited(1), now: .at(second), randomUnit: 0)
            pid += 1
            _ = machine.tick(now: .at(second + 9))
            machine.spawned(pid: pid, now: .at(second + 9))
        }
        #expect(machine.crashLooping(now: .at(30)), "4 failures within 60 s")
        #expect(machine.isBroken(now: .at(30)))
        #expect(!machine.crashLooping(now: .at(61.5)), "the first failure left the window")
    }

    @Test func exitCode78WaitsForReload() {
        var machine = readyMachine()
        _ = machine.exited(pid: 100, status: .configurationError, now: .at(1), randomUnit: 0)
        #expect(machine.stateName == "config error")
        #expect(machine.tick(now: .at(1000)) == .none, "no retry, however long we wait")
        #expect(machine.isBroken(now: .at(1000)))
        #expect(machine.reload(changed: false, now: .at(1001)) == .spawn)
    }

    @Test func exitCode78DuringStartIsAlsoFinal() throws {
        var machine = Machine(enabled: true, policy: testPolicy)
        _ = machine.boot(now: .at(0))
        machine.spawned(pid: 7, now: .at(0))
        _ = machine.exited(pid: 7, status: .exited(78), now: .at(0.1), randomUnit: 0)
        #expect(machine.phase == .configError)
        #expect(try machine.start(now: .at(1)) == .spawn, "an explicit start retries")
    }

    @Test func notReadyInTimeIsStoppedAndCountedAsAFailure() {
        var machine = Machine(enabled: true, policy: testPolicy)
        _ = machine.boot(now: .at(0))
        machine.spawned(pid: 9, now: .at(0))
        #expect(machine.tick(now: .at(9.9)) == .none)
        #expect(machine.tick(now: .at(10)) == .terminate(pid: 9))
        #expect(machine.note == "not ready within 10 s")
        #expect(machine.tick(now: .at(15)) == .kill(pid: 9), "SIGKILL after the stop timeout")
        #expect(machine.tick(now: .at(16)) == .none, "killed once")
        #expect(machine.exited(pid: 9, status: .signaled(9), now: .at(16), randomUnit: 0) == .none)
        #expect(machine.phase == .backoff(until: .at(17)))
        #expect(machine.note?.hasPrefix("not ready within 10 s; next start in") == true)
    }

    @Test func operatorStopHoldsItDownUntilStarted() throws {
        var machine = readyMachine()
        #expect(machine.stop(now: .at(1)) == .terminate(pid: 100))
        #expect(machine.stateName == "stopping")
        #expect(machine.exited(pid: 100, status: .signaled(15), now: .at(2), randomUnit: 0) == .none)
        #expect(machine.stateName == "stopped")
        #expect(machine.tick(now: .at(100)) == .none)
        #expect(try machine.start(now: .at(101)) == .spawn)
    }

    @Test func restartStopsThenSpawnsWithoutBackoff() throws {
        var machine = readyMachine()
        #expect(try machine.restart(now: .at(1)) == .terminate(pid: 100))
        #expect(machine.exited(pid: 100, status: .signaled(15), now: .at(1.2), randomUnit: 0) == .spawn)
        machine.spawned(pid: 101, now: .at(1.2))
        #expect(machine.becameReady(pid: 101, now: .at(1.3)) == true)
        #expect(!machine.crashLooping(now: .at(1.3)))
        #expect(machine.restarts == 1)
    }

    @Test func disableStopsAndEnableStarts() {
        var machine = readyMachine()
        #expect(machine.setEnabled(false, now: .at(1)) == .terminate(pid: 100))
        _ = machine.exited(pid: 100, status: .exited(0), now: .at(2), randomUnit: 0)
        #expect(machine.stateName == "disabled")
        #expect(!machine.wanted)
        #expect(machine.setEnabled(true, now: .at(3)) == .spawn)
    }

    @Test func disableDuringBackoffCancelsTheRestart() {
        var machine = readyMachine()
        _ = machine.exited(pid: 100, status: .exited(1), now: .at(1), randomUnit: 0)
        #expect(machine.setEnabled(false, now: .at(1.5)) == .none)
        #expect(machine.tick(now: .at(100)) == .none)
        #expect(machine.stateName == "disabled")
    }

    @Test func reloadRestartsOnlyWhenChanged() {
        var machine = readyMachine()
        #expect(machine.reload(changed: false, now: .at(1)) == .none)
        #expect(machine.reload(changed: true, now: .at(1)) == .terminate(pid: 100))
        #expect(machine.exited(pid: 100, status: .signaled(15), now: .at(2), randomUnit: 0) == .spawn)
    }

    @Test func notInstalledIsRetriedOnReload() {
        var machine = Machine(enabled: true, policy: testPolicy)
        #expect(machine.boot(now: .at(0)) == .spawn)
        machine.spawnFailed(notFound: true, reason: "x is not installed", now: .at(0), randomUnit: 0)
        #expect(machine.stateName == "not installed")
        #expect(machine.tick(now: .at(100)) == .none)
        #expect(machine.reload(changed: false, now: .at(101)) == .spawn)
    }

    @Test func nextDeadlineNamesTheTimerThatIsRunning() throws {
        var machine = Machine(enabled: true, policy: testPolicy)
        #expect(machine.nextDeadline == nil)
        _ = machine.boot(now: .at(0))
        machine.spawned(pid: 1, now: .at(0))
        #expect(machine.nextDeadline == .at(10), "the readiness deadline")
        _ = machine.becameReady(pid: 1, now: .at(1))
        #expect(machine.nextDeadline == nil)
        _ = try machine.restart(now: .at(2))
        #expect(machine.nextDeadline == .at(7), "SIGKILL is due")
        _ = machine.tick(now: .at(7))
        #expect(machine.nextDeadline == nil, "killed; nothing more to time")
        _ = machine.exited(pid: 1, status: .signaled(9), now: .at(8), randomUnit: 0)
        machine.spawned(pid: 2, now: .at(8))
        _ = machine.exited(pid: 2, status: .exited(1), now: .at(9), randomUnit: 0)
        #expect(machine.nextDeadline == .at(10), "the end of the backoff")
    }

    @Test func staleEventsFromAnOldProcessAreIgnored() {
        var machine = readyMachine(pid: 5)
        #expect(machine.becameReady(pid: 4, now: .at(1)) == false)
        #expect(machine.exited(pid: 4, status: .exited(1), now: .at(1), randomUnit: 0) == .none)
        #expect(machine.isReady)
    }
}
