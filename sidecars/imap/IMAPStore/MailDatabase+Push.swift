import Foundation
import GRDB
import IMAPCore

/// Push device tokens and the queue of notifications, in the mail store so that a notification
/// is written in the same transaction as the delivery it is for.
extension MailDatabase {
    /// A known token sent again is written (its last-seen time) at most this often, so that a
    /// client repeating SETMETADATA costs reads, not writes.
    static let tokenSeenGranularity: Int64 = 3600

    static func registerPushMigration(_ migrator: inout DatabaseMigrator) {
        // Tokens had been kept as one METADATA entry (the last device's); they move here.
        migrator.registerMigration("v3-push") { db in
            try db.execute(
                sql: """
                    CREATE TABLE push_token (
                        id INTEGER PRIMARY KEY,
                        account INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                        token BLOB NOT NULL,
                        last_seen INTEGER NOT NULL,
                        UNIQUE (account, token)
                    );
                    CREATE INDEX push_token_seen ON push_token(last_seen);
                    CREATE TABLE push_pending (
                        token INTEGER PRIMARY KEY REFERENCES push_token(id) ON DELETE CASCADE,
                        generation INTEGER NOT NULL DEFAULT 1,
                        since INTEGER NOT NULL,
                        due INTEGER NOT NULL,
                        failures INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX push_pending_due ON push_pending(due);
                    INSERT OR IGNORE INTO push_token (account, token, last_seen)
                        SELECT account, value, CAST(strftime('%s', 'now') AS INTEGER) FROM metadata
                        WHERE mailbox = 'INBOX' AND entry = '/private/devicetoken' AND length(value) > 0;
                    DELETE FROM metadata WHERE mailbox = 'INBOX' AND entry = '/private/devicetoken';
                    """)
        }
    }

    /// Queues a notification for each token of `account`; one already queued takes the new
    /// delivery in (its generation grows, so a post under way is followed by one more).
    static func queuePushes(_ db: Database, account: Int64, time: Int64) throws -> Bool {
        try db.execute(
            sql: """
                INSERT INTO push_pending (token, since, due) SELECT id, ?, ? FROM push_token WHERE account = ?
                ON CONFLICT (token) DO UPDATE SET generation = generation + 1
                """, arguments: [time, time, account])
        return db.changesCount > 0
    }

    public func addPushToken(account: Account, token: [UInt8]) throws {
        let time = now()
        let maxTokens = settings.maxPushTokens
        let data = Data(token)
        if let seen = try pool.read({
            try Int64.fetchOne(
                $0, sql: "SELECT last_seen FROM push_token WHERE account = ? AND token = ?",
                arguments: [account.id, data])
        }), time - seen < Self.tokenSeenGranularity {
            return
        }
        try pool.write { db in
            try db.execute(
                sql: "UPDATE push_token SET last_seen = ? WHERE account = ? AND token = ?",
                arguments: [time, account.id, data])
            guard db.changesCount == 0 else { return }
            let count =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM push_token WHERE account = ?", arguments: [account.id])
                ?? 0
            guard count < maxTokens else { throw MailStoreError.pushTokensTooMany }
            try db.execute(
                sql: "INSERT INTO push_token (account, token, last_seen) VALUES (?, ?, ?)",
                arguments: [account.id, data, time])
        }
    }

    /// The account's tokens, oldest first (tests, operators).
    public func pushTokens(account: Account) throws -> [[UInt8]] {
        try pool.read { db in
            try Data.fetchAll(
                db, sql: "SELECT token FROM push_token WHERE account = ? ORDER BY id", arguments: [account.id]
            )
            .map { [UInt8]($0) }
        }
    }

    /// Removes tokens not sent again for `maxAge` seconds (with their queued notifications);
    /// returns how many.
    public func expirePushTokens(maxAge: Int64) throws -> Int {
        let time = now()
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM push_token WHERE last_seen < ?", arguments: [time - maxAge])
            return db.changesCount
        }
    }

    /// Queued notifications due by now, earliest first, at most `limit`, leaving out the tokens in
    /// `excluding` (posts under way).
    public func duePushes(limit: Int, excluding: Set<Int64>) throws -> [PendingPush] {
        let time = now()
        return try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT push_pending.token AS id, push_token.token AS token, generation, since, failures
                    FROM push_pending JOIN push_token ON push_token.id = push_pending.token
                    WHERE due <= ? ORDER BY due LIMIT ?
                    """, arguments: [time, limit + excluding.count])
            return rows.lazy.filter { !excluding.contains($0["id"]) }.prefix(limit).map {
                PendingPush(
                    tokenID: $0["id"], token: [UInt8]($0["token"] as Data), generation: $0["generation"],
                    since: $0["since"], failures: $0["failures"])
            }
        }
    }

    /// When the earliest queued notification is due, if any is queued.
    public func nextPushDue() throws -> Int64? {
        try pool.read { try Int64.fetchOne($0, sql: "SELECT MIN(due) FROM push_pending") }
    }

    /// How many notifications are queued.
    public func pendingPushCount() throws -> Int {
        try pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM push_pending") ?? 0 }
    }

    /// Records the outcome of a post of `pending` (decided by `PushSettlement.after` against the
    /// queue as it is now) and returns it.
    @discardableResult
    public func settlePush(_ pending: PendingPush, result: PushResult, schedule: PushSchedule) throws -> PushSettlement
    {
        try settlePushes([(pending, result)], schedule: schedule)[0]
    }

    /// `settlePush` for several posts in one transaction (the worker gathers them: one write,
    /// one sync, for many posts).
    public func settlePushes(_ outcomes: [(PendingPush, PushResult)], schedule: PushSchedule) throws
        -> [PushSettlement]
    {
        let time = now()
        return try pool.write { db in
            try outcomes.map { pending, result in
                try Self.settle(db, pending, result: result, schedule: schedule, now: time)
            }
        }
    }

    private static func settle(
        _ db: Database, _ pending: PendingPush, result: PushResult, schedule: PushSchedule, now time: Int64
    ) throws -> PushSettlement {
        guard
            let generation = try Int64.fetchOne(
                db, sql: "SELECT generation FROM push_pending WHERE token = ?", arguments: [pending.tokenID])
        else {
            // The token went meanwhile (expired, account deleted): nothing is left to settle.
            if result == .gone {
                try db.execute(sql: "DELETE FROM push_token WHERE id = ?", arguments: [pending.tokenID])
            }
            return result == .gone ? .deleteToken : .done
        }
        let settlement = PushSettlement.after(
            result, pending: pending, generation: generation, schedule: schedule, now: time)
        switch settlement {
        case .done, .drop:
            try db.execute(sql: "DELETE FROM push_pending WHERE token = ?", arguments: [pending.tokenID])
        case .again:
            try db.execute(
                sql: "UPDATE push_pending SET since = ?, due = ?, failures = 0 WHERE token = ?",
                arguments: [time, time, pending.tokenID])
        case .deleteToken:
            try db.execute(sql: "DELETE FROM push_token WHERE id = ?", arguments: [pending.tokenID])
        case .retry(let due, let failures):
            try db.execute(
                sql: "UPDATE push_pending SET due = ?, failures = ? WHERE token = ?",
                arguments: [due, failures, pending.tokenID])
        }
        return settlement
    }
}
