/// A per-connection byte-rate limit: `rate` bytes per second with a burst of `burst` bytes. Time is given in
/// seconds by the caller. Reading past the budget runs a debt; the caller stops reading for the returned delay.
public struct TokenBucket: Sendable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updated: Double

    public init(rate: Int, burst: Int, now: Double) {
        self.rate = Double(rate)
        self.burst = Double(max(burst, 1))
        self.tokens = self.burst
        self.updated = now
    }

    /// Takes `bytes` at time `now`; returns how many seconds the reader should pause (0 when within budget).
    public mutating func consume(_ bytes: Int, now: Double) -> Double {
        refill(now: now)
        tokens -= Double(bytes)
        return tokens >= 0 ? 0 : -tokens / rate
    }

    /// Seconds until the debt is paid at `now` (0 when there is none).
    public mutating func delay(now: Double) -> Double {
        refill(now: now)
        return tokens >= 0 ? 0 : -tokens / rate
    }

    private mutating func refill(now: Double) {
        if now > updated {
            tokens = min(burst, tokens + (now - updated) * rate)
            updated = now
        }
    }
}
