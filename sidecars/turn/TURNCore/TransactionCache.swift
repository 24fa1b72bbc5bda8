/// Answers to recent requests by 5-tuple and transaction ID, so a retransmitted request gets the same answer
/// instead of being processed twice (RFC 8489 §6.3.1: a retransmitted Allocate must not get 437). Bounded:
/// entries expire after `lifetime` seconds and the oldest is evicted beyond `capacity`.
public struct TransactionCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var fiveTuple: FiveTuple
        public var transactionID: STUNTransactionID
        public init(fiveTuple: FiveTuple, transactionID: STUNTransactionID) {
            self.fiveTuple = fiveTuple
            self.transactionID = transactionID
        }
    }

    public let capacity: Int
    /// RFC 8489's 40 seconds (Rc × RTO span of a client's retransmissions) by default.
    public let lifetime: Int64
    private var entries: [Key: (response: [UInt8], expiry: Int64)] = [:]
    /// Insertion order, for eviction; may hold keys already removed.
    private var order: [Key] = []
    private var orderStart = 0

    public init(capacity: Int = 4096, lifetime: Int64 = 40) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    public var count: Int { entries.count }

    public func response(for key: Key, now: Int64) -> [UInt8]? {
        guard let entry = entries[key], entry.expiry > now else { return nil }
        return entry.response
    }

    public mutating func store(_ response: [UInt8], for key: Key, now: Int64) {
        if entries.updateValue((response, now + lifetime), forKey: key) == nil { order.append(key) }
        while entries.count > capacity, orderStart < order.count {
            entries[order[orderStart]] = nil
            orderStart += 1
        }
        compactOrder()
    }

    /// Drops expired entries.
    public mutating func sweep(now: Int64) {
        while orderStart < order.count {
            let key = order[orderStart]
            if let entry = entries[key], entry.expiry > now { break }
            entries[key] = nil
            orderStart += 1
        }
        compactOrder()
    }

    private mutating func compactOrder() {
        if orderStart > 1024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}

/// Allocation quotas: per username, per client IP and in total (eturnal and coturn keep similar ones). Shared by
/// all event loops, so the I/O layer keeps it behind a lock; it is touched on Allocate and on release only.
public struct AllocationQuotas: Sendable {
    public var perUsername: Int
    public var perClientIP: Int
    public var total: Int
    private var byUsername: [String: Int] = [:]
    private var byClient: [PeerHost: Int] = [:]
    public private(set) var current = 0

    public init(perUsername: Int = 10, perClientIP: Int = 64, total: Int = 50_000) {
        self.perUsername = perUsername
        self.perClientIP = perClientIP
        self.total = total
    }

    /// Counts one allocation for `username` from `client`, or false (and counts nothing) if a quota is full.
    public mutating func acquire(username: String, client: STUNAddress) -> Bool {
        let host = PeerHost(client)
        guard current < total, byUsername[username, default: 0] < perUsername, byClient[host, default: 0] < perClientIP
        else { return false }
        current += 1
        byUsername[username, default: 0] += 1
        byClient[host, default: 0] += 1
        return true
    }

    public mutating func release(username: String, client: STUNAddress) {
        let host = PeerHost(client)
        guard let users = byUsername[username], let clients = byClient[host] else { return }
        current -= 1
        byUsername[username] = users > 1 ? users - 1 : nil
        byClient[host] = clients > 1 ? clients - 1 : nil
    }
}

/// Limits unauthenticated error answers (401, 438, 400) per source IP and second, so the server is a poor
/// reflector: a spoofed flood gets at most `perSecond` answers per address. Bounded memory: the table is cleared
/// every second and refuses new addresses when full.
public struct ErrorRateLimiter: Sendable {
    public let perSecond: Int
    public let maximumSources: Int
    private var second: Int64 = .min
    private var counts: [PeerHost: Int] = [:]

    public init(perSecond: Int = 200, maximumSources: Int = 65536) {
        self.perSecond = perSecond
        self.maximumSources = maximumSources
    }

    /// Whether an answer to `source` may be sent now (and counts it).
    public mutating func allow(_ source: STUNAddress, now: Int64) -> Bool {
        if now != second {
            second = now
            counts.removeAll(keepingCapacity: true)
        }
        let host = PeerHost(source)
        let count = counts[host, default: 0]
        guard count < perSecond, count > 0 || counts.count < maximumSources else { return false }
        counts[host] = count + 1
        return true
    }
}
