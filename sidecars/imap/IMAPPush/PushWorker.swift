import Foundation
import IMAPCore
import IMAPStore
import Logging
import NIOPosix

/// What the push worker has done since it started.
public struct PushCounters: Codable, Equatable, Sendable {
    /// Posts the proxy answered 200.
    public var sent = 0
    /// Failed posts to be tried again.
    public var retried = 0
    /// Tokens the proxy answered 410 for (deleted).
    public var gone = 0
    /// Notifications given up after failing for the whole schedule.
    public var dropped = 0

    public init() {}
}

/// Posts the queued push notifications of the mail store: one thread finds what is due and
/// writes back what the posts gave (`MailDatabase.settlePushes`, gathered: one transaction for
/// many posts), at most `concurrency` posts run at once on a thread pool of their own. The thread
/// goes round at most every `period`, so a stream of deliveries costs a bounded number of reads
/// and writes, not some per message. Nothing here runs on an event loop or inside a delivery: a
/// slow or dead proxy holds up only these threads. Tokens never reach the logs.
public final class PushWorker: @unchecked Sendable {
    public struct Settings: Sendable {
        public var concurrency = 8
        public var schedule = PushSchedule()
        /// The shortest time between two rounds of the thread (reading the queue, writing outcomes).
        public var period: TimeInterval = 0.05

        public init() {}
    }

    public let settings: Settings
    private let poster: any PushPoster
    private let logger: Logger
    private let pool: NIOThreadPool
    // Guarded by `condition`.
    private let condition = NSCondition()
    /// Taken from the queue, not yet written back (posting, or posted and waiting in `outcomes`).
    private var inFlight = Set<Int64>()
    private var outcomes: [(PendingPush, PushResult)] = []
    private var woken = false
    private var stopped = false
    private var finished = false
    private var counts = PushCounters()

    public init(settings: Settings, poster: any PushPoster, logger: Logger) {
        self.settings = settings
        self.poster = poster
        self.logger = logger
        pool = NIOThreadPool(numberOfThreads: max(1, settings.concurrency))
    }

    public var counters: PushCounters { locked { counts } }

    /// Something was queued: look at the queue soon.
    public func wake() {
        locked {
            woken = true
            condition.signal()
        }
    }

    /// Starts posting what `store` has queued (including what was left from before a restart).
    public func start(store: MailDatabase) {
        pool.start()
        let thread = Thread { [self] in run(store) }
        thread.name = "push"
        thread.start()
    }

    /// Stops taking new notifications and waits up to `patience` for the posts under way to end
    /// and their outcomes to be written. A post still going on then (a proxy that does not answer)
    /// stays queued and is made again after the next start.
    public func stop(patience: Duration = .seconds(2)) async {
        locked {
            stopped = true
            condition.broadcast()
        }
        let deadline = ContinuousClock.now + patience
        while !locked({ finished }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if locked({ finished }) { try? await pool.shutdownGracefully() }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    private func run(_ store: MailDatabase) {
        while true {
            let roundStarted = Date()
            let (done, stop) = locked { () -> ([(PendingPush, PushResult)], Bool) in
                woken = false
                defer { outcomes = [] }
                return (outcomes, stopped)
            }
            if !done.isEmpty { settle(done, store: store) }
            let (free, busy) = locked { (settings.concurrency - inFlight.count, inFlight) }
            if stop {
                if busy.isEmpty { break }
            }
            var taken: [PendingPush] = []
            if free > 0 && !stop {
                do {
                    taken = try store.duePushes(limit: free, excluding: busy)
                } catch {
                    logger.error("push: cannot read the queue: \(error)")
                }
            }
            for pending in taken {
                locked { _ = inFlight.insert(pending.tokenID) }
                pool.submit { [self] _ in
                    let result = poster.post(pending.token)
                    locked {
                        outcomes.append((pending, result))
                        woken = true
                        condition.signal()
                    }
                }
            }
            // Sleep until woken (a delivery, a post ended), the next notification is due, or a minute.
            var wait: TimeInterval = 60
            if free > taken.count, !stop, let due = try? store.nextPushDue() {
                let seconds = TimeInterval(due) - Date().timeIntervalSince1970
                // Due now but under way: the end of that post wakes us.
                wait = seconds > 0 ? min(seconds, wait) : 1
            }
            let deadline = Date(timeIntervalSinceNow: wait)
            locked {
                while !woken && !stopped && Date() < deadline { _ = condition.wait(until: deadline) }
            }
            // At most one round per period: what comes meanwhile is taken together.
            let rest = settings.period - Date().timeIntervalSince(roundStarted)
            if rest > 0 { Thread.sleep(forTimeInterval: rest) }
        }
        locked { finished = true }
    }

    /// Writes back the outcomes of finished posts, counts and logs them.
    private func settle(_ done: [(PendingPush, PushResult)], store: MailDatabase) {
        let settlements: [PushSettlement]
        do {
            settlements = try store.settlePushes(done, schedule: settings.schedule)
        } catch {
            // Left as they were: tried again when due.
            logger.error("push: cannot record the outcome of \(done.count) posts: \(error)")
            locked { done.forEach { inFlight.remove($0.0.tokenID) } }
            return
        }
        let totals = locked { () -> PushCounters in
            for (settlement, (pending, _)) in zip(settlements, done) {
                switch settlement {
                case .done, .again: counts.sent += 1
                case .deleteToken: counts.gone += 1
                case .retry: counts.retried += 1
                case .drop: counts.dropped += 1
                }
                inFlight.remove(pending.tokenID)
            }
            return counts
        }
        let summary = "sent=\(totals.sent) retried=\(totals.retried) gone=\(totals.gone) dropped=\(totals.dropped)"
        let now = Int64(Date().timeIntervalSince1970)
        for (settlement, (_, result)) in zip(settlements, done) {
            switch (settlement, result) {
            case (.done, _), (.again, _):
                logger.debug("push: posted (\(summary))")
            case (.deleteToken, _):
                logger.info("push: the proxy says a token is gone (410): deleted (\(summary))")
            case (.retry(let due, let failures), .failed(let reason)):
                logger.info("push: post failed (\(reason)), try \(failures + 1) in \(due - now) s (\(summary))")
            case (.drop, .failed(let reason)):
                logger.warning("push: post failed (\(reason)) for too long: notification dropped (\(summary))")
            default:
                logger.info("push: \(settlement) (\(summary))")
            }
        }
    }
}
