import ChatmailCrypto
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

    /// A boolean toggle ("true"/"false", read leniently as madmail does); nil when unset or unreadable.
    public func toggle(_ key: String) throws -> Bool? {
        switch try setting(key)?.lowercased() {
        case "true", "1", "yes", "on", "enable", "enabled": true
        case "false", "0", "no", "off", "disable", "disabled": false
        default: nil
        }
    }

    public func setToggle(_ key: String, _ value: Bool) throws {
        try setSetting(key, value ? "true" : "false")
    }

    /// The TURN secrets, current first (then the previous one, if any). The first call on a new
    /// install creates the secret: 32 random bytes, kept as base64url text.
    public func turnSecrets() throws -> [String] {
        try pool.write { db in
            var secrets = try Self.secrets(db)
            if secrets.isEmpty {
                try Self.insertSecret(db)
                secrets = try Self.secrets(db)
            }
            return secrets
        }
    }

    /// Makes a new current secret; the old current one becomes the previous, older ones are deleted.
    public func rotateTURNSecret() throws -> [String] {
        try pool.write { db in
            try Self.insertSecret(db)
            try db.execute(
                sql: "DELETE FROM turn_secrets WHERE id NOT IN (SELECT id FROM turn_secrets ORDER BY id DESC LIMIT 2)")
            return try Self.secrets(db)
        }
    }

    private static func secrets(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT secret FROM turn_secrets ORDER BY id DESC LIMIT 2")
    }

    private static func insertSecret(_ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO turn_secrets(secret, created_at) VALUES (?, ?)",
            arguments: [Crypto.base64URL(Crypto.randomBytes(32)), Int(Date().timeIntervalSince1970)])
    }
}
