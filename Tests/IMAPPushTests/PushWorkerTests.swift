import ChatmailMetrics
import Foundation
import IMAPCore
import IMAPPush
import IMAPStore
import Logging
import Synchronization
import Testing

/// A proxy in memory: records the tokens posted, answers `answer(token)` after `delay`.
final class FakePoster: PushPoster {
    let posted = Mutex<[[UInt8]]>([])
    let delay: TimeInterval
    let answer: @Sendable ([UInt8]) -> PushResult

    init(delay: TimeInterval = 0, answer: @escaping @Sendable ([UInt8]) -> PushResult = { _ in .delivered }) {
        self.delay = delay
        self.answer = answer
    }

    func post(_ token: [UInt8]) -> PushResult {
        posted.withLock { $0.append(token) }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        return answer(token)
    }
}

@Suite struct PushWorkerTests {
    let database: MailDatabase
    let alice: Account
    let wake = WakeBox()

    final class WakeBox: Sendable {
        let worker = Mutex<PushWorker?>(nil)
        func wake() { worker.withLock { $0 }?.wake() }
    }

    init() throws {
        let directory = NSTemporaryDirectory() + "push-worker-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var settings = MailDatabase.Settings(rules: AccountRules(domain: "example.org"))
        settings.passwordIterations = 1000
        let wake = wake
        database = try MailDatabase(path: directory + "/imap.sqlite", settings: settings, pushQueued: { wake.wake() })
        alice = try #require(try database.login(user: "aliceaaaa@example.org", password: "longenough"))
    }

    func worker(_ poster: FakePoster) -> PushWorker {
        var settings = PushWorker.Settings()
        settings.concurrency = 2
        let worker = PushWorker(settings: settings, poster: poster, logger: Logger(label: "test"))
        wake.worker.withLock { $0 = worker }
        worker.start(store: database)
        return worker
    }

    func waitUntil(_ condition: () throws -> Bool) throws {
        for _ in 0..<500 where try !condition() { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try condition())
    }

    @Test func eachTokenIsPostedOnceAndTheOutcomesAreWrittenBack() async throws {
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        try database.addPushToken(account: alice, token: Array("old".utf8))
        let poster = FakePoster { $0 == Array("old".utf8) ? .gone : .delivered }
        let worker = worker(poster)
        _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address])
        try waitUntil { try database.pendingPushCount() == 0 && worker.counters.sent + worker.counters.gone == 2 }
        await worker.stop()
        #expect(
            poster.posted.withLock { $0.sorted { $0.lexicographicallyPrecedes($1) } } == [
                Array("old".utf8), Array("phone".utf8),
            ])
        #expect(try database.pushTokens(account: alice) == [Array("phone".utf8)])
        var expected = PushCounters()
        expected.sent = 1
        expected.gone = 1
        #expect(worker.counters == expected)
        let samples = PushCounters.metrics.samples(worker.counters)
        #expect(samples.map { $0.labels.first?.value ?? "" } == ["sent", "retried", "gone", "dropped"])
        #expect(samples.map(\.value) == [1, 0, 1, 0])
        #expect(Set(samples.map(\.name)) == ["chatmail_imap_push_posts_total"])
    }

    /// 100 deliveries while a post takes 0.3 s: a few posts, not one per message.
    @Test func aBurstWhileTheProxyIsSlowCoalesces() async throws {
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        let poster = FakePoster(delay: 0.3)
        let worker = worker(poster)
        for _ in 0..<100 { _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address]) }
        try waitUntil { try database.pendingPushCount() == 0 }
        await worker.stop()
        let posts = poster.posted.withLock { $0.count }
        #expect(posts >= 1 && posts <= 5, "\(posts) posts")
        #expect(worker.counters.sent == posts)
    }

    /// A post that fails is written back for a retry, and stop() leaves it queued for the next start.
    @Test func failuresStayQueuedAcrossAStop() async throws {
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        let poster = FakePoster { _ in .failed("status 500") }
        let worker = worker(poster)
        _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address])
        try waitUntil { worker.counters.retried == 1 }
        await worker.stop()
        #expect(try database.pendingPushCount() == 1)
        #expect(poster.posted.withLock { $0.count } == 1)
    }
}
