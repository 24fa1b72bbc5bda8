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
    public var maxFailedLoginsPerMinute = 20
    /// `* OK Still here` to idling clients this often (Delta Chat gives up after 5 minutes).
    public var keepaliveInterval: TimeAmount = .seconds(120)
    /// Connections silent this long are logged out (not while idling).
    public var autologout: TimeAmount = .minutes(30)
    /// Connections that do not log in within this time are closed.
    public var loginTimeout: TimeAmount = .seconds(60)

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
    /// Where commands run (they touch the store: SQLite, password hashes), so that the event
    /// loops stay free; nil runs them on the event loop (tests).
    public let threadPool: NIOThreadPool?
    /// METADATA entries from the supervisor's discovery for an account (its address), by lowercased entry name.
    let discovery: @Sendable (String) async -> [String: String]
    private let limiter: Mutex<LoginLimiter>
    private let sessions = Mutex<[Int64: Int]>([:])

    public init(
        store: any MailStore, notifier: MailboxNotifier, settings: IMAPServerSettings, tls: TLSContextProvider?,
        logger: Logger, threadPool: NIOThreadPool? = nil,
        discovery: @escaping @Sendable (String) async -> [String: String] = { _ in [:] }
    ) {
        self.threadPool = threadPool
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.tls = tls
        self.logger = logger
        self.discovery = discovery
        limiter = Mutex(LoginLimiter(limit: settings.maxFailedLoginsPerMinute))
    }

    private static func now() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    func loginAllowed(from source: String) -> Bool {
        limiter.withLock { $0.allows(source, now: Self.now()) }
    }

    func recordLoginFailure(from source: String) {
        limiter.withLock { $0.recordFailure(source, now: Self.now()) }
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

    /// Authenticated sessions open now (all accounts).
    public var sessionCount: Int { sessions.withLock { $0.values.reduce(0, +) } }
}
