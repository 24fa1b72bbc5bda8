/// The run-time toggles `chatmailctl enable`/`disable` save in the state database, under
/// madmail-compatible `settings` keys: the one reading of them, for the supervisor (at start and
/// reload, through `StateStore`) and for chatmailctl while the supervisor is down (`StateReader`).
public enum SavedToggles {
    /// The toggle key of each child that can be enabled and disabled at run time.
    public static let keys = ["turn": "__TURN_ENABLED__", "iroh": "__IROH_ENABLED__", "shadowsocks": "__SS_ENABLED__"]

    /// A toggle's saved value ("true"/"false", read leniently as madmail does); nil when unset or unreadable.
    public static func parse(_ value: String?) -> Bool? {
        switch value?.lowercased() {
        case "true", "1", "yes", "on", "enable", "enabled": true
        case "false", "0", "no", "off", "disable", "disabled": false
        default: nil
        }
    }

    /// How a toggle is saved.
    public static func value(_ enabled: Bool) -> String { enabled ? "true" : "false" }

    /// Each child with a saved toggle and its saved state; children without one follow the file.
    public static func load(setting: (String) throws -> String?) rethrows -> [String: Bool] {
        var saved: [String: Bool] = [:]
        for (child, key) in keys {
            if let enabled = parse(try setting(key)) { saved[child] = enabled }
        }
        return saved
    }
}

extension StateReader {
    /// The toggles saved by `chatmailctl enable`/`disable` (empty before the supervisor has run).
    public func savedToggles() throws -> [String: Bool] { try SavedToggles.load(setting: setting) }
}
