import IMAPCore
import Testing

@Suite struct PushTests {
    @Test func tokenRules() {
        let token = Array("openpgp:wcDMA+/Ab=".utf8)
        #expect(PushToken.problem(token, maxBytes: 4096) == nil)
        #expect(PushToken.problem([], maxBytes: 4096) == .empty)
        #expect(PushToken.problem(Array(repeating: 0x41, count: 4097), maxBytes: 4096) == .tooLong(max: 4096))
        #expect(PushToken.problem(Array(repeating: 0x41, count: 4096), maxBytes: 4096) == nil)
        for bad: [UInt8] in [[0x41, 13, 10], [0x41, 0], [0x41, 10], [0x20], [0x41, 0x7F], [0xC3, 0xA4], [9]] {
            #expect(PushToken.problem(bad, maxBytes: 4096) == .invalidByte)
        }
    }

    /// 8^n seconds after the n-th failure, the last try 5 hours after queueing, then given up.
    @Test func retryScheduleOnAnInjectedClock() {
        let schedule = PushSchedule()
        let since: Int64 = 1_000_000
        var now = since
        var tries: [Int64] = [now]
        var failures = 0
        while true {
            failures += 1
            guard let due = schedule.retry(failures: failures, since: since, now: now) else { break }
            #expect(due > now)
            now = due
            tries.append(now)
        }
        #expect(tries.map { $0 - since } == [0, 8, 72, 584, 4680, 18000])
        #expect(failures == 6)
        // A shortened schedule (tests): base 2, give up after 10 s.
        let short = PushSchedule(base: 2, giveUpAfter: 10)
        #expect(short.retry(failures: 1, since: 0, now: 0) == 2)
        #expect(short.retry(failures: 3, since: 0, now: 6) == 10)
        #expect(short.retry(failures: 4, since: 0, now: 10) == nil)
        // Huge failure counts do not overflow.
        #expect(schedule.retry(failures: 1000, since: 0, now: 1) == 18000)
    }

    @Test func settlementCoalescesAndRetries() {
        let schedule = PushSchedule()
        let pending = PendingPush(tokenID: 1, token: Array("t".utf8), generation: 3, since: 100, failures: 0)
        #expect(
            PushSettlement.after(.delivered, pending: pending, generation: 3, schedule: schedule, now: 101) == .done)
        // Mail came while the post was under way: one more post, not one per message.
        #expect(
            PushSettlement.after(.delivered, pending: pending, generation: 9, schedule: schedule, now: 101) == .again)
        #expect(
            PushSettlement.after(.gone, pending: pending, generation: 3, schedule: schedule, now: 101) == .deleteToken)
        #expect(
            PushSettlement.after(.failed("status 500"), pending: pending, generation: 3, schedule: schedule, now: 101)
                == .retry(due: 109, failures: 1))
        var late = pending
        late.failures = 5
        #expect(
            PushSettlement.after(.failed("refused"), pending: late, generation: 3, schedule: schedule, now: 100 + 18000)
                == .drop)
        #expect(PushResult(status: 200) == .delivered)
        #expect(PushResult(status: 410) == .gone)
        #expect(PushResult(status: 204) == .failed("status 204"))
    }
}
