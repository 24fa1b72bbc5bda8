import ChatmailTLS
import IMAPCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Settings of the IMAP listeners beyond the session's own.
public struct IMAPServerSettings: Sendable {
    public var session = SessionConfiguration()
    public var limits = IMAPLimits()
    public var maxSessionsPerAccount = 50
    /// Failed logins and account creations allowed per source address.
    public var sourceLimits = SourceLimits.Settings()
    /// `* OK Still here` to idling clients this often (Delta Chat gives up after 5 minutes).
    public var keepaliveInterval: TimeAmount = .seconds(120)
    /// Connections silent this long are logged out (not while idling).
    public var autologout: TimeAmount = .minutes(30)
    /// Connections that do not log in within this time are closed.
    public var loginTimeout: TimeAmount = .seconds(60)
    /// Connections whose TLS handshake (TLS port, STARTTLS) takes longer are closed.
    public var handshakeTimeout: TimeAmount = .seconds(30)
    /// Connections whose responses stay unread this long (the send buffer full) are closed.
    public var sendTimeout: TimeAmount = .seconds(120)

    public init() {}
}

/// What every IMAP connection shares: the store, change notifications, TLS, discovery and the
/// per-source and per-account limits.
public final class IMAPServices: Sendable {
    public let store: any MailStore
    public let notifier: MailboxNotifier
    public let settings: IMAPServerSettings
    public let tls: TLSContextProvider?
    public let logger: Logger
    /// Where commands of logged-in sessions run (they touch the store), so that the event loops
    /// stay free; nil runs them on the event loop (tests).
    public let threadPool: NIOThreadPool?
    /// Where commands before login run (LOGIN hashes a password): a pool of their own, so that
    /// slow commands of logged-in sessions cannot hold up logins.
    public let loginThreadPool: NIOThreadPool?
    /// Sessions by account id: notified, they end (the account was deleted).
    public let accountSessions = MailboxNotifier()
    /// METADATA entries from the supervisor's discovery for an account (its address), by lowercased entry name.
    let discovery: @Sendable (String) async -> [String: String]
    /// Failed logins and account creations per source address; shared with other login paths.
    public let sourceLimits: SourceLimits
    /// What `/metrics` reports (`IMAPCounters`); LMTP counts through `CountingLMTPBackend`.
    public let counters = IMAPCounterBoard()
    private let sessions = Mutex<[Int64: Int]>([:])

    public init(
        store: any MailStore, notifier: MailboxNotifier, settings: IMAPServerSettings, tls: TLSContextProvider?,
        logger: Logger, threadPool: NIOThreadPool? = nil, loginThreadPool: NIOThreadPool? = nil,
        sourceLimits: SourceLimits? = nil,
        discovery: @escaping @Sendable (String) async -> [String: String] = { _ in [:] }
    ) {
        self.threadPool = threadPool
        self.loginThreadPool = loginThreadPool ?? threadPool
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.tls = tls
        self.logger = logger
        self.discovery = discovery
        self.sourceLimits =
            sourceLimits ?? SourceLimits(settings.sourceLimits) { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
    }

    /// Counts a session for `account`; false when it has too many.
    func admit(_ account: Account) -> Bool {
        sessions.withLock { counts in
            guard counts[account.id, default: 0] < settings.maxSessionsPerAccount else { return false }
            counts[account.id, default: 0] += 1
            return true
        }
    }

    func release(_ account: Account) {
        sessions.withLock { counts in
            counts[account.id, default: 1] -= 1
            if counts[account.id] == 0 { counts[account.id] = nil }
        }
    }

    /// Accounts with a logged-in session now.
    public var accountsInSession: [Int64] { accountSessions.subscribedKeys }

    /// Ends every session of these accounts (`* BYE`, close): they were deleted.
    public func accountsDeleted(_ ids: [Int64]) {
        accountSessions.notify(ids)
    }

    /// Authenticated sessions open now (all accounts).
    public var sessionCount: Int { sessions.withLock { $0.values.reduce(0, +) } }
}
