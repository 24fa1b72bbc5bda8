import Synchronization

/// A `MailStore` in memory, for tests and for trying the protocol without a database. Accounts
/// are added with `addAccount`; LOGIN compares the password as is.
public final class MemoryMailStore: MailStore {
    struct Message {
        var info: MessageInfo
        var body: [UInt8]
    }

    struct Mailbox {
        var info: MailboxInfo
        var account: Int64
        var messages: [Message] = []
    }

    struct State {
        var accounts: [String: (account: Account, password: String)] = [:]
        var mailboxes: [Int64: Mailbox] = [:]
        var metadata: [String: [UInt8]] = [:]
        var pushTokens: [Int64: [[UInt8]]] = [:]
        var nextID: Int64 = 1
    }

    private let state = Mutex(State())
    public let quotaBytes: Int64
    /// The clock for internal dates.
    public let now: @Sendable () -> Int64

    public init(quotaBytes: Int64 = 100 * 1024 * 1024, now: @escaping @Sendable () -> Int64 = { 1_700_000_000 }) {
        self.quotaBytes = quotaBytes
        self.now = now
    }

    @discardableResult
    public func addAccount(_ address: String, password: String) -> Account {
        state.withLock { state in
            let account = Account(id: state.nextID, address: address.lowercased())
            state.nextID += 1
            state.accounts[account.address] = (account, password)
            Self.createMailbox(&state, account: account.id, name: "INBOX")
            return account
        }
    }

    /// Delivers `body` to the account's INBOX; returns the new UID.
    @discardableResult
    public func deliver(_ body: [UInt8], to address: String, flags: [String] = []) throws -> UInt32 {
        try state.withLock { state in
            guard let account = state.accounts[address.lowercased()]?.account,
                let inbox = state.mailboxes.values.first(where: { $0.account == account.id && $0.info.name == "INBOX" })
            else { throw MailStoreError.noSuchMailbox }
            guard Self.used(state, account: account.id) + Int64(body.count) <= quotaBytes else {
                throw MailStoreError.quotaExceeded
            }
            return Self.append(&state, mailbox: inbox.info.id, body: body, flags: flags, date: now())
        }
    }

    private static func createMailbox(_ state: inout State, account: Int64, name: String) {
        let id = state.nextID
        state.nextID += 1
        state.mailboxes[id] = Mailbox(
            info: MailboxInfo(id: id, name: name, uidValidity: UInt32(id), uidNext: 1), account: account)
    }

    @discardableResult
    private static func append(_ state: inout State, mailbox: Int64, body: [UInt8], flags: [String], date: Int64)
        -> UInt32
    {
        let uid = state.mailboxes[mailbox]!.info.uidNext
        state.mailboxes[mailbox]!.info.uidNext += 1
        let info = MessageInfo(uid: uid, flags: flags.sorted(), internalDate: date, size: body.count)
        state.mailboxes[mailbox]!.messages.append(Message(info: info, body: body))
        return uid
    }

    private static func used(_ state: State, account: Int64) -> Int64 {
        state.mailboxes.values.filter { $0.account == account }
            .reduce(0) {
                $0 + $1.messages.reduce(0) { $0 + Int64($1.body.count + Keywords.quotaBytes($1.info.flags)) }
            }
    }

    public func login(user: String, password: String, mayCreate: () -> Bool) throws -> Account? {
        state.withLock { state in
            guard let entry = state.accounts[user.lowercased()], entry.password == password else { return nil }
            return entry.account
        }
    }

    public func mailboxes(account: Account) throws -> [MailboxInfo] {
        state.withLock { $0.mailboxes.values.filter { $0.account == account.id }.map(\.info).sorted { $0.id < $1.id } }
    }

    public func mailbox(account: Account, name: String) throws -> MailboxInfo? {
        state.withLock { $0.mailboxes.values.first { $0.account == account.id && $0.info.name == name }?.info }
    }

    public func createMailbox(account: Account, name: String) throws {
        try state.withLock { state in
            if state.mailboxes.values.contains(where: { $0.account == account.id && $0.info.name == name }) {
                throw MailStoreError.mailboxExists
            }
            Self.createMailbox(&state, account: account.id, name: name)
        }
    }

    public func deleteMailbox(account: Account, name: String) throws {
        try state.withLock { state in
            guard
                let id = state.mailboxes.first(where: { $0.value.account == account.id && $0.value.info.name == name })?
                    .key
            else { throw MailStoreError.noSuchMailbox }
            state.mailboxes[id] = nil
        }
    }

    public func uids(mailbox: Int64) throws -> [UInt32] {
        state.withLock { $0.mailboxes[mailbox]?.messages.map(\.info.uid) ?? [] }
    }

    public func messages(mailbox: Int64, uids: [UInt32]) throws -> [MessageInfo] {
        let wanted = Set(uids)
        return state.withLock { $0.mailboxes[mailbox]?.messages.map(\.info).filter { wanted.contains($0.uid) } ?? [] }
    }

    public func body(mailbox: Int64, uid: UInt32) throws -> [UInt8]? {
        state.withLock { $0.mailboxes[mailbox]?.messages.first { $0.info.uid == uid }?.body }
    }

    public func storeFlags(mailbox: Int64, uids: [UInt32], operation: StoreOperation, flags: [String]) throws
        -> [MessageInfo]
    {
        let wanted = Set(uids)
        return try state.withLock { state in
            guard var box = state.mailboxes[mailbox] else { return [] }
            let before = Self.used(state, account: box.account)
            var changed: [MessageInfo] = []
            var added = 0
            for index in box.messages.indices where wanted.contains(box.messages[index].info.uid) {
                var set = Set(box.messages[index].info.flags)
                switch operation {
                case .add: set.formUnion(flags)
                case .remove: set.subtract(flags)
                case .replace: set = Set(flags)
                }
                try Keywords.check(set)
                added += Keywords.quotaBytes(set) - Keywords.quotaBytes(box.messages[index].info.flags)
                box.messages[index].info.flags = set.sorted()
                changed.append(box.messages[index].info)
            }
            if added > 0 && before + Int64(added) > quotaBytes { throw MailStoreError.quotaExceeded }
            state.mailboxes[mailbox] = box
            return changed
        }
    }

    public func expunge(mailbox: Int64, uids: [UInt32]) throws -> [UInt32] {
        let wanted = Set(uids)
        return state.withLock { state in
            let removed = state.mailboxes[mailbox]?.messages.map(\.info.uid).filter { wanted.contains($0) } ?? []
            state.mailboxes[mailbox]?.messages.removeAll { wanted.contains($0.info.uid) }
            return removed
        }
    }

    @discardableResult
    public func copy(mailbox: Int64, uids: [UInt32], to target: Int64) throws -> [(source: UInt32, copy: UInt32)] {
        let wanted = Set(uids)
        return try state.withLock { state in
            guard let source = state.mailboxes[mailbox], state.mailboxes[target] != nil else {
                throw MailStoreError.noSuchMailbox
            }
            let messages = source.messages.filter { wanted.contains($0.info.uid) }
            let size = messages.reduce(0) { $0 + Int64($1.body.count) }
            guard Self.used(state, account: source.account) + size <= quotaBytes else {
                throw MailStoreError.quotaExceeded
            }
            return messages.map { message in
                let copy = Self.append(
                    &state, mailbox: target, body: message.body, flags: message.info.flags,
                    date: message.info.internalDate)
                return (message.info.uid, copy)
            }
        }
    }

    public func append(mailbox: Int64, message: [UInt8], flags: [String], date: Int64?) throws -> UInt32 {
        try state.withLock { state in
            guard let box = state.mailboxes[mailbox] else { throw MailStoreError.noSuchMailbox }
            try Keywords.check(flags)
            let size = Int64(message.count + Keywords.quotaBytes(flags))
            guard Self.used(state, account: box.account) + size <= quotaBytes else {
                throw MailStoreError.quotaExceeded
            }
            return Self.append(&state, mailbox: mailbox, body: message, flags: flags, date: date ?? now())
        }
    }

    public func quota(account: Account) throws -> Quota {
        state.withLock { Quota(usedBytes: Self.used($0, account: account.id), limitBytes: quotaBytes) }
    }

    public func metadata(account: Account, mailbox: String, entry: String) throws -> [UInt8]? {
        state.withLock { $0.metadata["\(account.id)\u{0}\(mailbox)\u{0}\(entry)"] }
    }

    public func setMetadata(account: Account, mailbox: String, entry: String, value: [UInt8]?) throws {
        state.withLock { $0.metadata["\(account.id)\u{0}\(mailbox)\u{0}\(entry)"] = value }
    }

    /// At most `maxPushTokens` per account.
    public let maxPushTokens = 16

    public func addPushToken(account: Account, token: [UInt8]) throws {
        try state.withLock { state in
            var tokens = state.pushTokens[account.id] ?? []
            guard !tokens.contains(token) else { return }
            guard tokens.count < maxPushTokens else { throw MailStoreError.pushTokensTooMany }
            tokens.append(token)
            state.pushTokens[account.id] = tokens
        }
    }

    public func pushTokens(account: Account) -> [[UInt8]] {
        state.withLock { $0.pushTokens[account.id] ?? [] }
    }
}
