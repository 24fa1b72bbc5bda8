import Foundation
import GRDB

/// Read-only access to the supervisor's state database (`<state_dir>/state.db`), for those who may
/// read it but never write it: a child run on its own, and chatmailctl while the supervisor is down.
/// Only chatmail-supervisor writes it (`StateStore`).
public struct StateReader: Sendable {
    public let path: String

    public init(directory: String) {
        path = directory + "/state.db"
    }

    /// Whether the database is there at all (the supervisor has run once).
    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// A setting; nil when unset or when there is no database yet. Opening the database read-only
    /// neither creates nor changes it.
    public func setting(_ key: String) throws -> String? {
        guard exists else { return nil }
        var configuration = GRDB.Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try queue.read { db in
            guard try db.tableExists("settings") else { return nil }
            return try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key])
        }
    }
}
