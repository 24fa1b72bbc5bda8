import ChatmailCrypto
import ChatmailState
import Foundation
import GRDB

/// The supervisor's state database (SQLite in WAL mode): runtime toggles under madmail-compatible
/// `settings` keys, generated secrets (the Shadowsocks key), and the TURN secrets. Only the
/// supervisor writes it; others read it with `StateReader` (ChatmailState) or ask the supervisor.
public final class StateStore: Sendable {
    private let pool: DatabasePool
    public let path: String

    /// Opens (creating and migrating as needed) `state.db` in `directory`.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        path = directory + "/state.db"
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(10)  // another process (chatmailctl, a sidecar) may hold the write lock
        pool = try DatabasePool(path: path, configuration: configuration)
        chmod(path, 0o600)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "settings") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
            try db.create(table: "turn_secrets") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("secret", .text).notNull()
                t.column("created_at", .integer).notNull()
            }
        }
        try migrator.migrate(pool)
    }

    /// A setting; nil when unset.
    public func setting(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key])
        }
    }

    public func setSetting(_ key: String, _ value: String?) throws {
        try pool.write { db in
            if let value {
                try db.execute(
                    sql:
                        "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
            }
        }
    }

    /// The setting `key`, created with `make()` in the same transaction when it is unset (secrets made at
    /// first use, such as the Shadowsocks key).
    public func setting(_ key: String, creatingWith make: @Sendable () -> String) throws -> String {
        try pool.write { db in
            if let value = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) {
                return value
            }
            let value = make()
            try db.execute(sql: "INSERT INTO settings(key, value) VALUES (?, ?)", arguments: [key, value])
            return value
        }
    }

    /// A boolean toggle (`SavedToggles.parse`); nil when unset or unreadable.
    public func toggle(_ key: String) throws -> Bool? { SavedToggles.parse(try setting(key)) }

    /// The toggles saved by `chatmailctl enable`/`disable`, by child.
    public func savedToggles() throws -> [String: Bool] { try SavedToggles.load(setting: setting) }

    public func setToggle(_ key: String, _ value: Bool) throws {
        try setSetting(key, SavedToggles.value(value))
    }

    /// The most TURN secrets kept: rotating more often than this within one credential lifetime
    /// cuts the oldest credentials short.
    public static let maximumTURNSecrets = 16

    /// The TURN secrets whose credentials may still be live, current first: the current one, and
    /// each earlier one until `ttl` seconds after it was replaced (nothing it minted expires later),
    /// at most `maximumTURNSecrets`. Those no longer needed are deleted. The first call on a new
    /// install creates the secret: 32 random bytes, kept as base64url text. `now`: Unix seconds.
    public func turnSecrets(ttl: Int, now: Int = Int(Date().timeIntervalSince1970)) throws -> [String] {
        try pool.write { db in
            if try Self.secrets(db).isEmpty { try Self.insertSecret(db, now: now) }
            return try Self.pruneSecrets(db, ttl: ttl, now: now).kept
        }
    }

    /// Makes a new current secret; the earlier ones stay as `turnSecrets` says. Also returns how
    /// many secrets with possibly live credentials were dropped to stay within the bound.
    public func rotateTURNSecret(ttl: Int, now: Int = Int(Date().timeIntervalSince1970)) throws -> (
        secrets: [String], cutShort: Int
    ) {
        try pool.write { db in
            try Self.insertSecret(db, now: now)
            let (kept, cutShort) = try Self.pruneSecrets(db, ttl: ttl, now: now)
            return (kept, cutShort)
        }
    }

    /// Every secret, newest first, with the time it was made.
    private static func secrets(_ db: Database) throws -> [(id: Int64, secret: String, createdAt: Int)] {
        try Row.fetchAll(db, sql: "SELECT id, secret, created_at FROM turn_secrets ORDER BY id DESC").map {
            (id: $0["id"], secret: $0["secret"], createdAt: $0["created_at"])
        }
    }

    /// Deletes the secrets no credential of which can be live any more, and beyond the bound.
    private static func pruneSecrets(_ db: Database, ttl: Int, now: Int) throws -> (kept: [String], cutShort: Int) {
        let all = try secrets(db)
        var kept: [String] = []
        var cutShort = 0
        for (index, row) in all.enumerated() {
            // A secret minted credentials until the next one was made; they expire `ttl` later at most.
            let live = index == 0 || all[index - 1].createdAt + ttl > now
            if live && kept.count < maximumTURNSecrets {
                kept.append(row.secret)
                continue
            }
            if live { cutShort += 1 }
            try db.execute(sql: "DELETE FROM turn_secrets WHERE id = ?", arguments: [row.id])
        }
        return (kept, cutShort)
    }

    private static func insertSecret(_ db: Database, now: Int) throws {
        try db.execute(
            sql: "INSERT INTO turn_secrets(secret, created_at) VALUES (?, ?)",
            arguments: [Crypto.base64URL(Crypto.randomBytes(32)), now])
    }
}
