/// Liveness pings the server sends (notes §2.5, §3.5): one ping every interval (plus jitter, chosen by the
/// caller), reset by every received frame; the matching pong must come within the timeout, which is 5 s for
/// family L and three round trips clamped to [0.5 s, 5 s] for family W (5 s before a round trip is known).
/// Times are seconds from the caller's clock.
public struct PingTracker: Sendable {
    public enum Timeout: Sendable {
        case fixed(Double)
        case roundTrips
    }

    public let timeoutRule: Timeout
    /// The outstanding ping's data and when it was sent.
    public private(set) var outstanding: (data: UInt64, sentAt: Double)?
    public private(set) var lastRoundTrip: Double?

    public init(timeout: Timeout) {
        self.timeoutRule = timeout
    }

    /// How long to wait for the pong of a ping sent now.
    public var timeout: Double {
        switch timeoutRule {
        case .fixed(let seconds): seconds
        case .roundTrips: lastRoundTrip.map { min(max(3 * $0, 0.5), 5) } ?? 5
        }
    }

    /// Records a ping sent at `now`; returns its deadline.
    public mutating func sent(_ data: UInt64, now: Double) -> Double {
        outstanding = (data, now)
        return now + timeout
    }

    /// A pong arrived: true when it answers the outstanding ping (which is then settled).
    public mutating func received(pong data: UInt64, now: Double) -> Bool {
        guard let ping = outstanding, ping.data == data else { return false }
        lastRoundTrip = now - ping.sentAt
        outstanding = nil
        return true
    }

    /// Whether the outstanding ping has gone unanswered past its deadline at `now`.
    public func expired(now: Double) -> Bool {
        guard let ping = outstanding else { return false }
        return now > ping.sentAt + timeout
    }
}
