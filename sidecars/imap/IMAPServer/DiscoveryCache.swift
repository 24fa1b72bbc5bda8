import Synchronization

/// The supervisor's discovery with a bounded wait: a session gets the fresh answer for its account
/// when it comes within `patience`, else the last answer there was, for whichever account (the
/// fresh one still updates it). So a slow control channel never blocks or fails a session; the
/// price is a TURN credential shared with another account while the supervisor is slow.
public final class DiscoveryCache: Sendable {
    private let fetch: @Sendable (String?) async -> [String: String]
    private let patience: Duration
    private let last = Mutex<[String: String]?>(nil)

    public init(patience: Duration = .seconds(1), fetch: @escaping @Sendable (String?) async -> [String: String]) {
        self.patience = patience
        self.fetch = fetch
    }

    /// The last answer the supervisor gave; nil before the first.
    public var lastAnswer: [String: String]? { last.withLock { $0 } }

    public func current(account: String? = nil) async -> (entries: [String: String], fresh: Bool) {
        let once = Once()
        return await withCheckedContinuation { continuation in
            Task {
                let entries = await self.fetch(account)
                self.last.withLock { $0 = entries }
                if once.claim() { continuation.resume(returning: (entries, true)) }
            }
            Task {
                try? await Task.sleep(for: self.patience)
                if once.claim() { continuation.resume(returning: (self.lastAnswer ?? [:], false)) }
            }
        }
    }
}

/// True for the first caller only.
private final class Once: Sendable {
    private let done = Mutex(false)

    func claim() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
