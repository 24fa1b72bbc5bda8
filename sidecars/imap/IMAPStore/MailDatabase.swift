import ChatmailCrypto
import Foundation
import GRDB
import GRDBSQLite
import IMAPCore

/// The mail store in its own SQLite database (WAL, synchronous=FULL so that a returned write
/// is durable). Accounts, mailboxes with stable UIDVALIDITY and increasing UIDs, messages with
/// flags, internal date and size, per-account quota and METADATA entries.
public final class MailDatabase: MailStore, LMTPBackend {
    public struct Settings: Sendable {
        public var rules: AccountRules
        public var autoCreate = true
        public var quotaBytes: Int64 = 100 * 1024 * 1024
        public var passwordIterations = 20000
        /// METADATA entries per account (all mailboxes); beyond it only existing ones can change.
        public var maxMetadataEntries = 32
        /// Last-login times are written at most this often (seconds), to spare writes.
        public var lastLoginGranularity: Int64 = 3600
        /// When set, first logins create accounts only while it is open.
        public var creationGate: AccountCreationGate?
        /// Push device tokens per account; a new one beyond gets `pushTokensTooMany`.
        public var maxPushTokens = 16
        /// A delivery queues push notifications (for the account's tokens) with the message.
        public var queuePushes = true

        public init(rules: AccountRules) {
            self.rules = rules
        }
    }

    public let settings: Settings
    let pool: DatabasePool
    let now: @Sendable () -> Int64
    /// Called after a committed change with the mailboxes it touched.
    private let changed: @Sendable ([Int64]) -> Void
    /// Called after a delivery queued push notifications.
    private let pushQueued: @Sendable () -> Void

    public init(
        path: String, settings: Settings,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        changed: @escaping @Sendable ([Int64]) -> Void = { _ in },
        pushQueued: @escaping @Sendable () -> Void = {}
    ) throws {
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        self.settings = settings
        self.now = now
        self.changed = changed
        self.pushQueued = pushQueued
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE account (
                        id INTEGER PRIMARY KEY,
                        address TEXT NOT NULL UNIQUE,
                        password TEXT NOT NULL,
                        created INTEGER NOT NULL,
                        last_login INTEGER NOT NULL,
                        used INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE TABLE mailbox (
                        id INTEGER PRIMARY KEY,
                        account INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                        name TEXT NOT NULL,
                        uid_validity INTEGER NOT NULL,
                        uid_next INTEGER NOT NULL DEFAULT 1,
                        UNIQUE (account, name)
                    );
                    CREATE TABLE message (
                        id INTEGER PRIMARY KEY,
                        mailbox INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
                        uid INTEGER NOT NULL,
                        flags TEXT NOT NULL DEFAULT '',
                        internal_date INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        UNIQUE (mailbox, uid)
                    );
                    CREATE INDEX message_date ON message(internal_date);
                    CREATE TABLE metadata (
                        account INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                        mailbox TEXT NOT NULL,
                        entry TEXT NOT NULL,
                        value BLOB NOT NULL,
                        PRIMARY KEY (account, mailbox, entry)
                    );
                    CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    INSERT INTO counter VALUES ('uid_validity', 0);
                    CREATE TRIGGER message_added AFTER INSERT ON message BEGIN
                        UPDATE account SET used = used + NEW.size
                        WHERE id = (SELECT account FROM mailbox WHERE id = NEW.mailbox);
                    END;
                    CREATE TRIGGER message_removed AFTER DELETE ON message BEGIN
                        UPDATE account SET used = used - OLD.size
                        WHERE id = (SELECT account FROM mailbox WHERE id = OLD.mailbox);
                    END;
                    """)
        }
        // Keywords count in the quota: their bytes per message, kept in `account.used` by the
        // triggers like the message sizes (messages from before start at 0 until their flags change).
        migrator.registerMigration("v2-keyword-bytes") { db in
            try db.execute(
                sql: """
                    ALTER TABLE message ADD COLUMN keyword_bytes INTEGER NOT NULL DEFAULT 0;
                    DROP TRIGGER message_added;
                    DROP TRIGGER message_removed;
                    CREATE TRIGGER message_added AFTER INSERT ON message BEGIN
                        UPDATE account SET used = used + NEW.size + NEW.keyword_bytes
                        WHERE id = (SELECT account FROM mailbox WHERE id = NEW.mailbox);
                    END;
                    CREATE TRIGGER message_removed AFTER DELETE ON message BEGIN
                        UPDATE account SET used = used - OLD.size - OLD.keyword_bytes
                        WHERE id = (SELECT account FROM mailbox WHERE id = OLD.mailbox);
                    END;
                    CREATE TRIGGER message_keywords AFTER UPDATE OF keyword_bytes ON message BEGIN
                        UPDATE account SET used = used + NEW.keyword_bytes - OLD.keyword_bytes
                        WHERE id = (SELECT account FROM mailbox WHERE id = NEW.mailbox);
                    END;
                    """)
        }
        registerPushMigration(&migrator)
        return migrator
    }

    // MARK: Accounts

    public func login(user: String, password: String, mayCreate: () -> Bool) throws -> Account? {
        guard let address = settings.rules.normalizedAddress(user) else { return nil }
        let time = now()
        if let row = try pool.read({
            try Row.fetchOne($0, sql: "SELECT * FROM account WHERE address = ?", arguments: [address])
        }) {
            guard PasswordHash.verify(password, against: row["password"]) else { return nil }
            let account = Account(id: row["id"], address: address)
            if time - (row["last_login"] as Int64) >= settings.lastLoginGranularity {
                try pool.write {
                    try $0.execute(
                        sql: "UPDATE account SET last_login = ? WHERE id = ?", arguments: [time, account.id])
                }
            }
            return account
        }
        guard settings.autoCreate, settings.rules.allowsCreation(address: address, password: password),
            settings.creationGate?.state().isOpen ?? true
        else { return nil }
        guard mayCreate() else { throw MailStoreError.creationLimited }
        let hash = PasswordHash.make(password, iterations: settings.passwordIterations)
        return try pool.write { db in
            // A concurrent first login may have created it meanwhile: then the password decides.
            if let existing = try Row.fetchOne(
                db, sql: "SELECT id, password FROM account WHERE address = ?", arguments: [address])
            {
                return PasswordHash.verify(password, against: existing["password"])
                    ? Account(id: existing["id"], address: address) : nil
            }
            return try Self.insertAccount(db, address: address, hash: hash, time: time)
        }
    }

    private static func insertAccount(_ db: Database, address: String, hash: String, time: Int64) throws -> Account {
        try db.execute(
            sql: "INSERT INTO account (address, password, created, last_login) VALUES (?, ?, ?, ?)",
            arguments: [address, hash, time, time])
        let account = Account(id: db.lastInsertedRowID, address: address)
        try insertMailbox(db, account: account.id, name: "INBOX", time: time)
        return account
    }

    private static func insertMailbox(_ db: Database, account: Int64, name: String, time: Int64) throws {
        // UIDVALIDITY grows across re-creations of a name: the clock, or one more than the last.
        let last = try Int64.fetchOne(db, sql: "SELECT value FROM counter WHERE name = 'uid_validity'") ?? 0
        let validity = min(max(time & 0xFFFF_FFFF, last + 1), 0xFFFF_FFFF)
        try db.execute(sql: "UPDATE counter SET value = ? WHERE name = 'uid_validity'", arguments: [validity])
        try db.execute(
            sql: "INSERT INTO mailbox (account, name, uid_validity) VALUES (?, ?, ?)",
            arguments: [account, name, validity])
    }

    /// Adds an account (operator command); false if it exists.
    public func addAccount(address: String, password: String) throws -> Bool {
        guard let normalized = settings.rules.normalizedAddress(address) else {
            throw MailStoreError.limitReached("Address must be localpart@\(settings.rules.domain)")
        }
        let hash = PasswordHash.make(password, iterations: settings.passwordIterations)
        let time = now()
        return try pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE address = ?", arguments: [normalized]) == true {
                return false
            }
            _ = try Self.insertAccount(db, address: normalized, hash: hash, time: time)
            return true
        }
    }

    public func deleteAccount(address: String) throws -> Bool {
        let changedBoxes = try pool.write { db -> [Int64]? in
            guard
                let id = try Int64.fetchOne(
                    db, sql: "SELECT id FROM account WHERE address = ?", arguments: [address.lowercased()])
            else { return nil }
            let boxes = try Int64.fetchAll(db, sql: "SELECT id FROM mailbox WHERE account = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM account WHERE id = ?", arguments: [id])
            return boxes
        }
        guard let changedBoxes else { return false }
        changed(changedBoxes)
        return true
    }

    public func setPassword(address: String, password: String) throws -> Bool {
        let hash = PasswordHash.make(password, iterations: settings.passwordIterations)
        return try pool.write { db in
            try db.execute(
                sql: "UPDATE account SET password = ? WHERE address = ?", arguments: [hash, address.lowercased()])
            return db.changesCount > 0
        }
    }

    public struct AccountSummary: Equatable, Sendable {
        public var address: String
        public var usedBytes: Int64
        public var lastLogin: Int64
    }

    public func accounts() throws -> [AccountSummary] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT address, used, last_login FROM account ORDER BY address").map {
                AccountSummary(address: $0["address"], usedBytes: $0["used"], lastLogin: $0["last_login"])
            }
        }
    }

    // MARK: Mailboxes and messages

    private static func mailboxInfo(_ row: Row) -> MailboxInfo {
        MailboxInfo(
            id: row["id"], name: row["name"], uidValidity: UInt32(row["uid_validity"] as Int64),
            uidNext: UInt32(row["uid_next"] as Int64))
    }

    public func mailboxes(account: Account) throws -> [MailboxInfo] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM mailbox WHERE account = ? ORDER BY id", arguments: [account.id])
                .map(Self.mailboxInfo)
        }
    }

    public func mailbox(account: Account, name: String) throws -> MailboxInfo? {
        try pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM mailbox WHERE account = ? AND name = ?", arguments: [account.id, name]
            )
            .map(Self.mailboxInfo)
        }
    }

    public func createMailbox(account: Account, name: String) throws {
        let time = now()
        try pool.write { db in
            if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM mailbox WHERE account = ? AND name = ?", arguments: [account.id, name]) == true
            {
                throw MailStoreError.mailboxExists
            }
            try Self.insertMailbox(db, account: account.id, name: name, time: time)
        }
    }

    public func deleteMailbox(account: Account, name: String) throws {
        let id = try pool.write { db -> Int64 in
            guard
                let id = try Int64.fetchOne(
                    db, sql: "SELECT id FROM mailbox WHERE account = ? AND name = ?", arguments: [account.id, name])
            else { throw MailStoreError.noSuchMailbox }
            try db.execute(sql: "DELETE FROM mailbox WHERE id = ?", arguments: [id])
            return id
        }
        changed([id])
    }

    public func uids(mailbox: Int64) throws -> [UInt32] {
        try pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT uid FROM message WHERE mailbox = ? ORDER BY uid", arguments: [mailbox])
                .map { UInt32($0) }
        }
    }

    private static func flags(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }

    private static func messageInfo(_ row: Row) -> MessageInfo {
        MessageInfo(
            uid: UInt32(row["uid"] as Int64), flags: flags(row["flags"]), internalDate: row["internal_date"],
            size: row["size"])
    }

    /// `uids` as a SQL condition: ranges of consecutive UIDs keep statements short.
    private static func uidCondition(_ uids: [UInt32]) -> (sql: String, arguments: StatementArguments) {
        var ranges: [(UInt32, UInt32)] = []
        for uid in uids.sorted() {
            if let last = ranges.last, uid == last.1 + 1 {
                ranges[ranges.count - 1].1 = uid
            } else if ranges.last?.1 != uid {
                ranges.append((uid, uid))
            }
        }
        guard !ranges.isEmpty else { return ("0", []) }
        let sql = ranges.map { _ in "uid BETWEEN ? AND ?" }.joined(separator: " OR ")
        return ("(\(sql))", StatementArguments(ranges.flatMap { [Int64($0.0), Int64($0.1)] }))
    }

    public func messages(mailbox: Int64, uids: [UInt32]) throws -> [MessageInfo] {
        let condition = Self.uidCondition(uids)
        return try pool.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT uid, flags, internal_date, size FROM message WHERE mailbox = ? AND \(condition.sql) ORDER BY uid",
                arguments: [mailbox] + condition.arguments
            ).map(Self.messageInfo)
        }
    }

    public func body(mailbox: Int64, uid: UInt32) throws -> [UInt8]? {
        try pool.read { db in
            guard
                let id = try Int64.fetchOne(
                    db, sql: "SELECT id FROM message WHERE mailbox = ? AND uid = ?", arguments: [mailbox, Int64(uid)])
            else { return nil }
            return try Self.body(db, message: id)
        }
    }

    /// A message body read straight into one array by SQLite's incremental blob I/O: a large
    /// body is held once, not once by SQLite and again by us.
    static func body(_ db: Database, message id: Int64) throws -> [UInt8] {
        var blob: OpaquePointer?
        let opened = sqlite3_blob_open(db.sqliteConnection, "main", "message", "body", id, 0, &blob)
        defer { sqlite3_blob_close(blob) }
        guard opened == SQLITE_OK, let blob else { throw DatabaseError(resultCode: ResultCode(rawValue: opened)) }
        let size = Int(sqlite3_blob_bytes(blob))
        var read = SQLITE_OK
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            if size > 0 { read = sqlite3_blob_read(blob, buffer.baseAddress, Int32(size), 0) }
            count = read == SQLITE_OK ? size : 0
        }
        guard read == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: read)) }
        return bytes
    }

    /// Which of `ids` are no longer accounts (deleted meanwhile, say by `chatmailctl user del`).
    public func missingAccounts(_ ids: [Int64]) throws -> [Int64] {
        try pool.read { db in
            var existing = Set<Int64>()
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(ids.count, start + 500)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                existing.formUnion(
                    try Int64.fetchAll(
                        db, sql: "SELECT id FROM account WHERE id IN (\(marks))", arguments: StatementArguments(chunk)))
            }
            return ids.filter { !existing.contains($0) }
        }
    }

    public func storeFlags(mailbox: Int64, uids: [UInt32], operation: StoreOperation, flags: [String]) throws
        -> [MessageInfo]
    {
        let condition = Self.uidCondition(uids)
        let quota = settings.quotaBytes
        let updated = try pool.write { db -> [MessageInfo] in
            var result: [MessageInfo] = []
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, uid, flags, internal_date, size, keyword_bytes FROM message
                    WHERE mailbox = ? AND \(condition.sql) ORDER BY uid
                    """,
                arguments: [mailbox] + condition.arguments)
            var added: Int64 = 0
            for row in rows {
                var info = Self.messageInfo(row)
                var set = Set(info.flags)
                switch operation {
                case .add: set.formUnion(flags)
                case .remove: set.subtract(flags)
                case .replace: set = Set(flags)
                }
                let newFlags = set.filter { $0 != Flag.recent }.sorted()
                if newFlags != info.flags {
                    try Keywords.check(newFlags)
                    let keywordBytes = Int64(Keywords.quotaBytes(newFlags))
                    added += keywordBytes - (row["keyword_bytes"] as Int64)
                    try db.execute(
                        sql: "UPDATE message SET flags = ?, keyword_bytes = ? WHERE id = ?",
                        arguments: [newFlags.joined(separator: " "), keywordBytes, row["id"] as Int64])
                }
                info.flags = newFlags
                result.append(info)
            }
            // Checked after the updates (the transaction rolls back): only growth can be refused.
            if added > 0,
                let used = try Int64.fetchOne(
                    db, sql: "SELECT used FROM account WHERE id = (SELECT account FROM mailbox WHERE id = ?)",
                    arguments: [mailbox]), used > quota
            {
                throw MailStoreError.quotaExceeded
            }
            return result
        }
        changed([mailbox])
        return updated
    }

    public func expunge(mailbox: Int64, uids: [UInt32]) throws -> [UInt32] {
        guard !uids.isEmpty else { return [] }
        let condition = Self.uidCondition(uids)
        let removed = try pool.write { db -> [UInt32] in
            let found = try Int64.fetchAll(
                db, sql: "SELECT uid FROM message WHERE mailbox = ? AND \(condition.sql)",
                arguments: [mailbox] + condition.arguments)
            try db.execute(
                sql: "DELETE FROM message WHERE mailbox = ? AND \(condition.sql)",
                arguments: [mailbox] + condition.arguments)
            return found.map { UInt32($0) }
        }
        if !removed.isEmpty { changed([mailbox]) }
        return removed
    }

    @discardableResult
    public func copy(mailbox: Int64, uids: [UInt32], to target: Int64) throws -> [(source: UInt32, copy: UInt32)] {
        let condition = Self.uidCondition(uids)
        let quota = settings.quotaBytes
        let copies = try pool.write { db -> [(source: UInt32, copy: UInt32)] in
            let size =
                try Int64.fetchOne(
                    db,
                    sql:
                        "SELECT COALESCE(SUM(size + keyword_bytes), 0) FROM message WHERE mailbox = ? AND \(condition.sql)",
                    arguments: [mailbox] + condition.arguments) ?? 0
            let used =
                try Int64.fetchOne(
                    db, sql: "SELECT used FROM account WHERE id = (SELECT account FROM mailbox WHERE id = ?)",
                    arguments: [target]) ?? 0
            guard used + size <= quota else { throw MailStoreError.quotaExceeded }
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, uid FROM message WHERE mailbox = ? AND \(condition.sql) ORDER BY uid",
                arguments: [mailbox] + condition.arguments)
            var copies: [(source: UInt32, copy: UInt32)] = []
            for row in rows {
                let uid = try Self.takeUID(db, mailbox: target)
                copies.append((UInt32(row["uid"] as Int64), UInt32(uid)))
                try db.execute(
                    sql: """
                        INSERT INTO message (mailbox, uid, flags, internal_date, size, body, keyword_bytes)
                        SELECT ?, ?, flags, internal_date, size, body, keyword_bytes FROM message WHERE id = ?
                        """, arguments: [target, uid, row["id"] as Int64])
            }
            return copies
        }
        changed([target])
        return copies
    }

    private static func takeUID(_ db: Database, mailbox: Int64) throws -> Int64 {
        guard let uid = try Int64.fetchOne(db, sql: "SELECT uid_next FROM mailbox WHERE id = ?", arguments: [mailbox])
        else {
            throw MailStoreError.noSuchMailbox
        }
        try db.execute(sql: "UPDATE mailbox SET uid_next = uid_next + 1 WHERE id = ?", arguments: [mailbox])
        return uid
    }

    public func append(mailbox: Int64, message: [UInt8], flags: [String], date: Int64?) throws -> UInt32 {
        try Keywords.check(flags)
        let keywordBytes = Int64(Keywords.quotaBytes(flags))
        let time = date ?? now()
        let quota = settings.quotaBytes
        let uid = try pool.write { db -> Int64 in
            let used =
                try Int64.fetchOne(
                    db, sql: "SELECT used FROM account WHERE id = (SELECT account FROM mailbox WHERE id = ?)",
                    arguments: [mailbox]) ?? 0
            guard used + Int64(message.count) + keywordBytes <= quota else { throw MailStoreError.quotaExceeded }
            let uid = try Self.takeUID(db, mailbox: mailbox)
            try db.execute(
                sql: """
                    INSERT INTO message (mailbox, uid, flags, internal_date, size, body, keyword_bytes)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    mailbox, uid, flags.sorted().joined(separator: " "), time, message.count, Data(message),
                    keywordBytes,
                ])
            return uid
        }
        changed([mailbox])
        return UInt32(uid)
    }

    public func quota(account: Account) throws -> Quota {
        let used =
            try pool.read {
                try Int64.fetchOne($0, sql: "SELECT used FROM account WHERE id = ?", arguments: [account.id])
            } ?? 0
        return Quota(usedBytes: used, limitBytes: settings.quotaBytes)
    }

    public func metadata(account: Account, mailbox: String, entry: String) throws -> [UInt8]? {
        try pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT value FROM metadata WHERE account = ? AND mailbox = ? AND entry = ?",
                arguments: [account.id, mailbox, entry]
            ).map { [UInt8]($0) }
        }
    }

    public func setMetadata(account: Account, mailbox: String, entry: String, value: [UInt8]?) throws {
        let maxEntries = settings.maxMetadataEntries
        try pool.write { db in
            if let value {
                // The cap refuses new entries only: an existing one may always be replaced.
                let exists =
                    try Bool.fetchOne(
                        db, sql: "SELECT 1 FROM metadata WHERE account = ? AND mailbox = ? AND entry = ?",
                        arguments: [account.id, mailbox, entry]) == true
                let count =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM metadata WHERE account = ?", arguments: [account.id]) ?? 0
                guard exists || count < maxEntries else { throw MailStoreError.metadataTooMany }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO metadata (account, mailbox, entry, value) VALUES (?, ?, ?, ?)",
                    arguments: [account.id, mailbox, entry, Data(value)])
            } else {
                try db.execute(
                    sql: "DELETE FROM metadata WHERE account = ? AND mailbox = ? AND entry = ?",
                    arguments: [account.id, mailbox, entry])
            }
        }
    }

    // MARK: Delivery and the sweep

    /// Whether LMTP should accept `address` as a recipient.
    public func recipientExists(_ address: String) throws -> Bool {
        guard let normalized = settings.rules.normalizedAddress(address) else { return false }
        return try pool.read {
            try Bool.fetchOne($0, sql: "SELECT 1 FROM account WHERE address = ?", arguments: [normalized])
        } == true
    }

    public func deliver(_ message: [UInt8], to recipients: [String]) throws -> [DeliveryResult] {
        try deliver(message, from: "", to: recipients)
    }

    /// Stores `message` in each recipient's INBOX in one transaction; when this returns, every
    /// `.delivered` is durable, and so are the push notifications it queued: one per device token
    /// of each recipient other than the sender (coalesced with one already queued).
    public func deliver(_ message: [UInt8], from sender: String, to recipients: [String]) throws -> [DeliveryResult] {
        let time = now()
        let quota = settings.quotaBytes
        let rules = settings.rules
        let queuePushes = settings.queuePushes
        let senderAddress = rules.normalizedAddress(sender)
        var touched: [Int64] = []
        var queued = false
        let results = try pool.write { db -> [DeliveryResult] in
            touched = []
            queued = false
            var results: [DeliveryResult] = []
            for recipient in recipients {
                guard let address = rules.normalizedAddress(recipient),
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT mailbox.id AS mailbox, account.used AS used, account.id AS account FROM account
                            JOIN mailbox ON mailbox.account = account.id AND mailbox.name = 'INBOX'
                            WHERE account.address = ?
                            """, arguments: [address])
                else {
                    results.append(.unknownRecipient)
                    continue
                }
                guard (row["used"] as Int64) + Int64(message.count) <= quota else {
                    results.append(.overQuota)
                    continue
                }
                let mailbox: Int64 = row["mailbox"]
                let uid = try Self.takeUID(db, mailbox: mailbox)
                try db.execute(
                    sql: "INSERT INTO message (mailbox, uid, internal_date, size, body) VALUES (?, ?, ?, ?, ?)",
                    arguments: [mailbox, uid, time, message.count, Data(message)])
                if queuePushes && address != senderAddress {
                    queued = try Self.queuePushes(db, account: row["account"], time: time) || queued
                }
                touched.append(mailbox)
                results.append(.delivered)
            }
            return results
        }
        if !touched.isEmpty { changed(touched) }
        if queued { pushQueued() }
        return results
    }

    /// Removes messages older than `messageAge` seconds and accounts not logged into for
    /// `inactiveAge` seconds; returns how many of each.
    public func sweep(messageAge: Int64, inactiveAge: Int64) throws -> (messages: Int, accounts: Int) {
        let time = now()
        var touched: [Int64] = []
        let counts = try pool.write { db -> (Int, Int) in
            touched = try Int64.fetchAll(
                db, sql: "SELECT DISTINCT mailbox FROM message WHERE internal_date < ?", arguments: [time - messageAge])
            try db.execute(sql: "DELETE FROM message WHERE internal_date < ?", arguments: [time - messageAge])
            let messages = db.changesCount
            try db.execute(sql: "DELETE FROM account WHERE last_login < ?", arguments: [time - inactiveAge])
            return (messages, db.changesCount)
        }
        if !touched.isEmpty { changed(touched) }
        return counts
    }
}
