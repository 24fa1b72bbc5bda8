import NIOCore
import Synchronization

/// Tells sessions that a mailbox changed (a delivery, an expunge, new flags), on their own
/// event loop, so that an idling client hears of new mail at once. Keyed by mailbox id; the
/// same mechanism keyed by account id ends the sessions of a deleted account.
public final class MailboxNotifier: Sendable {
    struct Subscriber {
        var mailbox: Int64
        var eventLoop: any EventLoop
        var callback: @Sendable () -> Void
    }

    private let subscribers = Mutex<(next: UInt64, byToken: [UInt64: Subscriber], byMailbox: [Int64: Set<UInt64>])>(
        (1, [:], [:]))

    public init() {}

    /// Registers `callback` for `mailbox`; returns a token for `unsubscribe`.
    public func subscribe(mailbox: Int64, on eventLoop: any EventLoop, _ callback: @escaping @Sendable () -> Void)
        -> UInt64
    {
        subscribers.withLock { state in
            let token = state.next
            state.next += 1
            state.byToken[token] = Subscriber(mailbox: mailbox, eventLoop: eventLoop, callback: callback)
            state.byMailbox[mailbox, default: []].insert(token)
            return token
        }
    }

    public func unsubscribe(_ token: UInt64) {
        subscribers.withLock { state in
            guard let subscriber = state.byToken.removeValue(forKey: token) else { return }
            state.byMailbox[subscriber.mailbox]?.remove(token)
            if state.byMailbox[subscriber.mailbox]?.isEmpty == true { state.byMailbox[subscriber.mailbox] = nil }
        }
    }

    public func notify(_ mailboxes: [Int64]) {
        let targets = subscribers.withLock { state in
            Set(mailboxes).flatMap { state.byMailbox[$0] ?? [] }.compactMap { state.byToken[$0] }
        }
        for target in targets { target.eventLoop.execute(target.callback) }
    }

    public var subscriberCount: Int { subscribers.withLock { $0.byToken.count } }

    /// The keys someone is subscribed to now.
    public var subscribedKeys: [Int64] { subscribers.withLock { Array($0.byMailbox.keys) } }
}
