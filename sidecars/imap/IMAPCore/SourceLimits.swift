import Synchronization

/// At most `limit` events per key within a sliding window of `window` seconds; pure, time
/// passed in. Memory per key is bounded by `limit` timestamps, and keys whose events have all
/// left the window are dropped once the table grows large.
public struct RateLimiter: Sendable {
    public var limit: Int
    public var window: Double
    private var events: [String: [Double]] = [:]
    /// The table size at which stale keys are swept next (doubling, so sweeps stay amortised).
    private var sweepAt = 100_000

    public init(limit: Int, window: Double) {
        self.limit = limit
        self.window = window
    }

    /// Whether `key` may have another event now (without counting one).
    public func allows(_ key: String, now: Double) -> Bool {
        (events[key] ?? []).count { now - $0 < window } < limit
    }

    /// Counts an event for `key` now.
    public mutating func record(_ key: String, now: Double) {
        var list = (events[key] ?? []).filter { now - $0 < window }
        list.append(now)
        if list.count > limit { list.removeFirst(list.count - limit) }
        events[key] = list
        if events.count > sweepAt {
            events = events.filter { $0.value.contains { now - $0 < window } }
            sweepAt = max(100_000, events.count * 2)
        }
    }

    /// `allows` and `record` in one step: true when the event was allowed and is now counted.
    public mutating func take(_ key: String, now: Double) -> Bool {
        guard allows(key, now: now) else { return false }
        record(key, now: now)
        return true
    }
}

/// What one source address (see `key(for:)`) may do: fail logins and create accounts, each
/// within its own window. Shared by every listener that logs users in (IMAP, SASL), so the
/// limits hold across protocols. Thread-safe; the clock is injected (seconds, monotonic).
public final class SourceLimits: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Failed logins per source per minute before it is refused for a while.
        public var failedLoginsPerMinute: Int
        /// Accounts a source may create per hour; 0 means no limit.
        public var accountCreationsPerHour: Int

        public init(failedLoginsPerMinute: Int = 20, accountCreationsPerHour: Int = 30) {
            self.failedLoginsPerMinute = failedLoginsPerMinute
            self.accountCreationsPerHour = accountCreationsPerHour
        }
    }

    public let settings: Settings
    private let now: @Sendable () -> Double
    private let state: Mutex<(failures: RateLimiter, creations: RateLimiter)>

    public init(_ settings: Settings, now: @escaping @Sendable () -> Double) {
        self.settings = settings
        self.now = now
        state = Mutex(
            (
                RateLimiter(limit: settings.failedLoginsPerMinute, window: 60),
                RateLimiter(limit: settings.accountCreationsPerHour, window: 3600)
            ))
    }

    /// Whether `source` may try another login now.
    public func loginAllowed(from source: String) -> Bool {
        let time = now()
        let key = Self.key(for: source)
        return state.withLock { $0.failures.allows(key, now: time) }
    }

    public func recordLoginFailure(from source: String) {
        let time = now()
        let key = Self.key(for: source)
        state.withLock { $0.failures.record(key, now: time) }
    }

    /// Counts an account creation for `source`; false (and nothing counted) when it has made
    /// too many within the hour.
    public func takeAccountCreation(from source: String) -> Bool {
        guard settings.accountCreationsPerHour > 0 else { return true }
        let time = now()
        let key = Self.key(for: source)
        return state.withLock { $0.creations.take(key, now: time) }
    }

    /// The key a source address is limited under: an IPv4 address as is, an IPv6 address by its
    /// /64 (one host usually holds a whole /64), an IPv4-mapped IPv6 address as the IPv4 one.
    /// Anything else (a Unix socket's path, "unknown") as is.
    public static func key(for address: String) -> String {
        guard address.contains(":"), let groups = IPv6Text.groups(address) else { return address }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "\(groups[6] >> 8).\(groups[6] & 0xFF).\(groups[7] >> 8).\(groups[7] & 0xFF)"
        }
        return groups[0..<4].map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }
}

/// Parses IPv6 text (RFC 4291 forms, `::` and a trailing dotted IPv4 allowed, a `%zone` ignored).
enum IPv6Text {
    static func groups(_ text: String) -> [UInt16]? {
        let address = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let gaps = address.ranges(of: "::")
        guard gaps.count <= 1 else { return nil }
        let halves = gaps.first.map { [address[..<$0.lowerBound], address[$0.upperBound...]] } ?? [address]
        func parse(_ part: Substring) -> [UInt16]? {
            guard !part.isEmpty else { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    let octets = piece.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
                    guard octets.count == 4, piece.split(separator: ".").count == 4 else { return nil }
                    out.append(UInt16(octets[0]) << 8 | UInt16(octets[1]))
                    out.append(UInt16(octets[2]) << 8 | UInt16(octets[3]))
                } else {
                    guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                    out.append(value)
                }
            }
            return out
        }
        guard let head = parse(halves[0]), let tail = halves.count == 2 ? parse(halves[1]) : [] else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard head.count + tail.count <= 7 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }
}
