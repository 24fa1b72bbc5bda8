import FrontCore
import IMAPCore
import NIOCore

/// The relay's site on the HTTPS front: `POST /new` (fresh credentials, refused while account creation is
/// closed, rate-limited per source address as IMAP's first logins are: `SourceLimits`), autoconfiguration and
/// the root page. Thread-safe.
public final class FrontSite: Sendable {
    public let onboarding: Onboarding
    /// Why accounts cannot be created now (the `[imap]` rule: `AccountCreationGate`), nil while they can.
    private let creationClosed: @Sendable () -> String?
    private let limits: SourceLimits

    /// - Parameter newAccountsPerHour: answers with credentials per source address (an IPv6 /64) per hour;
    ///   0: no limit.
    public init(
        onboarding: Onboarding, newAccountsPerHour: Int, creationClosed: @escaping @Sendable () -> String?,
        now: @escaping @Sendable () -> Double = { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
    ) {
        self.onboarding = onboarding
        self.creationClosed = creationClosed
        self.limits = SourceLimits(.init(accountCreationsPerHour: newAccountsPerHour), now: now)
    }

    /// The answer to `POST /new` from `source`: 200 with `{"email", "password"}`, or `{"reason"}` with 503 while
    /// creation is closed and 429 beyond the rate.
    func newAccount(from source: String) -> (status: Int, body: String) {
        if let reason = creationClosed() { return (503, Onboarding.refusalJSON(reason)) }
        guard limits.takeAccountCreation(from: source) else {
            return (429, Onboarding.refusalJSON("Too many new accounts from your address; try again later."))
        }
        var random = SystemRandomNumberGenerator()
        return (200, onboarding.newAccountJSON(using: &random))
    }
}
