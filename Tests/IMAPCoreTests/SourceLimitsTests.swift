import Synchronization
import Testing

@testable import IMAPCore

@Suite struct SourceLimitsTests {
    final class Clock: Sendable {
        let time = Mutex<Double>(0)
        var now: @Sendable () -> Double { { self.time.withLock { $0 } } }
        func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
    }

    @Test func rateLimiterSlidingWindow() {
        var limiter = RateLimiter(limit: 2, window: 60)
        #expect(limiter.allows("1.2.3.4", now: 0))
        limiter.record("1.2.3.4", now: 0)
        limiter.record("1.2.3.4", now: 1)
        #expect(!limiter.allows("1.2.3.4", now: 30))
        #expect(limiter.allows("5.6.7.8", now: 30))
        #expect(!limiter.allows("1.2.3.4", now: 59.5))
        #expect(limiter.allows("1.2.3.4", now: 60.5))
        let first = limiter.take("1.2.3.4", now: 60.5)
        let second = limiter.take("1.2.3.4", now: 60.6)
        #expect(first && !second)
    }

    @Test func failedLogins() {
        let clock = Clock()
        let limits = SourceLimits(.init(failedLoginsPerMinute: 2, accountCreationsPerHour: 0), now: clock.now)
        limits.recordLoginFailure(from: "192.0.2.1")
        #expect(limits.loginAllowed(from: "192.0.2.1"))
        limits.recordLoginFailure(from: "192.0.2.1")
        #expect(!limits.loginAllowed(from: "192.0.2.1"))
        #expect(limits.loginAllowed(from: "192.0.2.2"))
        clock.advance(61)
        #expect(limits.loginAllowed(from: "192.0.2.1"))
    }

    @Test func accountCreationsPerHour() {
        let clock = Clock()
        let limits = SourceLimits(.init(accountCreationsPerHour: 3), now: clock.now)
        let taken = (0..<300).filter { _ in limits.takeAccountCreation(from: "192.0.2.1") }.count
        #expect(taken == 3)
        // Another address of the same IPv6 /64 shares the budget; another /64 has its own.
        #expect((0..<5).filter { _ in limits.takeAccountCreation(from: "2001:db8::1") }.count == 3)
        #expect(!limits.takeAccountCreation(from: "2001:db8:0:0:ffff::2"))
        #expect(limits.takeAccountCreation(from: "2001:db8:0:1::1"))
        clock.advance(3599)
        #expect(!limits.takeAccountCreation(from: "192.0.2.1"))
        clock.advance(2)
        #expect(limits.takeAccountCreation(from: "192.0.2.1"))
        let unlimited = SourceLimits(.init(accountCreationsPerHour: 0), now: clock.now)
        #expect((0..<100).allSatisfy { _ in unlimited.takeAccountCreation(from: "192.0.2.1") })
    }

    @Test func sourceKeys() {
        #expect(SourceLimits.key(for: "192.0.2.7") == "192.0.2.7")
        #expect(SourceLimits.key(for: "::ffff:192.0.2.7") == "192.0.2.7")
        #expect(SourceLimits.key(for: "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(SourceLimits.key(for: "2001:DB8:1:2::9%eth0") == "2001:db8:1:2::/64")
        #expect(SourceLimits.key(for: "::1") == "0:0:0:0::/64")
        #expect(SourceLimits.key(for: "1:::2") == "1:::2")
        #expect(SourceLimits.key(for: "unknown") == "unknown")
    }
}
