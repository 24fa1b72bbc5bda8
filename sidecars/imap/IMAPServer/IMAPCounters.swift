import ChatmailMetrics
import IMAPCore
import Synchronization

/// What the IMAP child counts, for the supervisor's `/metrics` (no addresses, no secrets).
public struct IMAPCounters: Sendable, Equatable {
    public var loginsOK = 0
    public var loginsFailed = 0
    /// SMTP logins the MTA checked on the SASL auth socket (`OK` and `FAIL` replies).
    public var saslLoginsOK = 0
    public var saslLoginsFailed = 0
    /// Accounts made by a first login (the store asks just before it creates one).
    public var accountsCreated = 0
    /// LMTP recipients delivered to, and refused because their mailbox was full.
    public var lmtpDeliveries = 0
    public var quotaRefusals = 0
    /// Authenticated IMAP sessions open now (set when read).
    public var sessions = 0

    public init() {}

    /// The metrics, one line each (`MetricDefinition`).
    public static let metrics: [MetricDefinition<IMAPCounters>] = [
        .gauge("chatmail_imap_sessions", "Authenticated IMAP sessions open now.", \.sessions),
        .counter("chatmail_imap_logins_total", "IMAP logins, by result.", labels: [("result", "ok")], \.loginsOK),
        .counter(
            "chatmail_imap_logins_total", "IMAP logins, by result.", labels: [("result", "failed")], \.loginsFailed),
        .counter(
            "chatmail_imap_sasl_logins_total", "SMTP logins checked on the SASL auth socket, by result.",
            labels: [("result", "ok")], \.saslLoginsOK),
        .counter(
            "chatmail_imap_sasl_logins_total", "SMTP logins checked on the SASL auth socket, by result.",
            labels: [("result", "failed")], \.saslLoginsFailed),
        .counter("chatmail_imap_accounts_created_total", "Accounts created by a first login.", \.accountsCreated),
        .counter("chatmail_imap_lmtp_deliveries_total", "LMTP recipients delivered to.", \.lmtpDeliveries),
        .counter(
            "chatmail_imap_quota_refusals_total", "LMTP recipients refused because their mailbox was full.",
            \.quotaRefusals),
    ]
}

/// The counters shared by every connection of the child.
public final class IMAPCounterBoard: Sendable {
    private let counters = Mutex(IMAPCounters())

    public init() {}

    public func count(_ update: (inout IMAPCounters) -> Void) { counters.withLock { update(&$0) } }

    public var value: IMAPCounters { counters.withLock { $0 } }
}

/// An `LMTPBackend` that counts what the one it wraps delivered and refused for quota.
public struct CountingLMTPBackend: LMTPBackend {
    public let backend: any LMTPBackend
    public let board: IMAPCounterBoard

    public init(_ backend: any LMTPBackend, board: IMAPCounterBoard) {
        self.backend = backend
        self.board = board
    }

    public func recipientExists(_ address: String) throws -> Bool { try backend.recipientExists(address) }

    public func deliver(_ message: [UInt8], from sender: String, to recipients: [String]) throws -> [DeliveryResult] {
        let results = try backend.deliver(message, from: sender, to: recipients)
        board.count { counters in
            counters.lmtpDeliveries += results.count { $0 == .delivered }
            counters.quotaRefusals += results.count { $0 == .overQuota }
        }
        return results
    }
}
