/// When to restart a child that failed: exponential backoff with jitter, a reset after a stable
/// ready period, and a crash-loop window for status.
public struct RestartPolicy: Sendable, Equatable {
    /// The delay after the first failure.
    public var minimumDelay: Duration
    /// The delay never grows beyond this (before jitter).
    public var maximumDelay: Duration
    /// Each further consecutive failure multiplies the delay by this.
    public var multiplier: Double
    /// The delay is stretched by a random factor in `1 ..< 1 + jitter`, so children that fail
    /// together do not restart in lockstep.
    public var jitter: Double
    /// A child ready for this long has its consecutive failures forgotten.
    public var stableAfter: Duration
    /// `crashLoopLimit` failures within `crashLoopWindow` count as a crash loop.
    public var crashLoopWindow: Duration
    public var crashLoopLimit: Int
    /// A child must report ready within this, or it is stopped and counted as a failure.
    public var readyTimeout: Duration
    /// Between SIGTERM and SIGKILL.
    public var stopTimeout: Duration

    public init(
        minimumDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(60), multiplier: Double = 2,
        jitter: Double = 0.25, stableAfter: Duration = .seconds(30), crashLoopWindow: Duration = .seconds(300),
        crashLoopLimit: Int = 10, readyTimeout: Duration = .seconds(30), stopTimeout: Duration = .seconds(5)
    ) {
        self.minimumDelay = minimumDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
        self.stableAfter = stableAfter
        self.crashLoopWindow = crashLoopWindow
        self.crashLoopLimit = crashLoopLimit
        self.readyTimeout = readyTimeout
        self.stopTimeout = stopTimeout
    }

    /// The delay before the next start after `failures` consecutive failures (1 or more), with
    /// `randomUnit` a random number in `0 ..< 1`.
    public func delay(afterFailures failures: Int, randomUnit: Double) -> Duration {
        let base = min(
            minimumDelay.seconds * pow(multiplier, Double(max(failures, 1) - 1)), maximumDelay.seconds)
        return .seconds(base * (1 + jitter * min(max(randomUnit, 0), 1)))
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// `pow` without Foundation: the multiplier is applied at most a few dozen times.
private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
        result *= base
        remaining -= 1
    }
    return result
}
