/// A mail account: the login name is the full, lowercased address.
public struct Account: Equatable, Hashable, Sendable {
    public var id: Int64
    public var address: String

    public init(id: Int64, address: String) {
        self.id = id
        self.address = address
    }
}

public struct MailboxInfo: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var uidValidity: UInt32
    public var uidNext: UInt32

    public init(id: Int64, name: String, uidValidity: UInt32, uidNext: UInt32) {
        self.id = id
        self.name = name
        self.uidValidity = uidValidity
        self.uidNext = uidNext
    }
}

public struct MessageInfo: Equatable, Sendable {
    public var uid: UInt32
    /// Canonical flag names, sorted.
    public var flags: [String]
    /// Seconds since 1970 when the message arrived.
    public var internalDate: Int64
    public var size: Int

    public init(uid: UInt32, flags: [String], internalDate: Int64, size: Int) {
        self.uid = uid
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
    }
}

public struct Quota: Equatable, Sendable {
    public var usedBytes: Int64
    public var limitBytes: Int64

    public init(usedBytes: Int64, limitBytes: Int64) {
        self.usedBytes = usedBytes
        self.limitBytes = limitBytes
    }
}

public enum MailStoreError: Error, Equatable, Sendable {
    case quotaExceeded
    case mailboxExists
    case noSuchMailbox
    case limitReached(String)
    /// Too many accounts were created from the client's address lately.
    case creationLimited
    /// A new METADATA entry beyond the per-account cap (RFC 5464's TOOMANY).
    case metadataTooMany
    /// A new device token beyond the per-account cap.
    case pushTokensTooMany
}

extension MailStore {
    /// A login that may create the account whenever the rules allow (operator tools, tests).
    public func login(user: String, password: String) throws -> Account? {
        try login(user: user, password: password, mayCreate: { true })
    }
}

/// What the IMAP session needs from storage. Calls are synchronous and short; every change
/// is durable when the call returns.
public protocol MailStore: Sendable {
    /// The account for these credentials, created on first login when the rules allow; nil
    /// when the credentials are wrong. `mayCreate` is asked (once) only when the account would
    /// be created; false refuses that with `MailStoreError.creationLimited`.
    func login(user: String, password: String, mayCreate: () -> Bool) throws -> Account?
    func mailboxes(account: Account) throws -> [MailboxInfo]
    func mailbox(account: Account, name: String) throws -> MailboxInfo?
    func createMailbox(account: Account, name: String) throws
    func deleteMailbox(account: Account, name: String) throws
    /// The UIDs in the mailbox, ascending.
    func uids(mailbox: Int64) throws -> [UInt32]
    /// The messages among `uids` that exist, ascending by UID.
    func messages(mailbox: Int64, uids: [UInt32]) throws -> [MessageInfo]
    func body(mailbox: Int64, uid: UInt32) throws -> [UInt8]?
    /// Changes the flags of `uids`; returns the messages' new state.
    func storeFlags(mailbox: Int64, uids: [UInt32], operation: StoreOperation, flags: [String]) throws -> [MessageInfo]
    /// Removes `uids` and returns those that were removed.
    func expunge(mailbox: Int64, uids: [UInt32]) throws -> [UInt32]
    /// Copies `uids` to another mailbox of the same account (new UIDs there, same flags and date);
    /// returns each copied message's UID and its copy's, ascending.
    @discardableResult
    func copy(mailbox: Int64, uids: [UInt32], to target: Int64) throws -> [(source: UInt32, copy: UInt32)]
    /// Stores `message` in the mailbox with these flags and date (now if nil), within the quota
    /// and the keyword bounds; returns its UID.
    func append(mailbox: Int64, message: [UInt8], flags: [String], date: Int64?) throws -> UInt32
    func quota(account: Account) throws -> Quota
    func metadata(account: Account, mailbox: String, entry: String) throws -> [UInt8]?
    func setMetadata(account: Account, mailbox: String, entry: String, value: [UInt8]?) throws
    /// Keeps a push device token (a valid one, `PushToken.problem` is nil) for the account: a new
    /// one is added (`pushTokensTooMany` beyond the cap), a known one counts as seen again.
    func addPushToken(account: Account, token: [UInt8]) throws
}
