import Logging
import Synchronization

/// No-log mode (`[supervisor] no_log = true`): log lines name no client address, account, TURN username, token,
/// iroh endpoint or proxy target; counts and errors stay. Every log site that would print such a value writes it
/// as `"\(personal: value)"`, which is the value, or `[hidden]` while the mode is on. `Sidecar.main` sets the mode
/// from the configuration before anything logs; it holds for the whole process, as the log level does.
public enum LogPrivacy {
    /// What stands in for a hidden value.
    public static let placeholder = "[hidden]"

    private static let hiding = Atomic<Bool>(false)

    /// Whether personal values are hidden in this process.
    public static var noLog: Bool {
        get { hiding.load(ordering: .relaxed) }
        set { hiding.store(newValue, ordering: .relaxed) }
    }

    /// `value` as a log line shows it: itself, or the placeholder under no-log.
    public static func shown(_ value: some Any, noLog: Bool) -> String {
        noLog ? placeholder : "\(value)"
    }
}

extension DefaultStringInterpolation {
    /// A value that identifies a client (address, account, username, token, target): hidden in no-log mode.
    public mutating func appendInterpolation(personal value: some Any) {
        appendLiteral(LogPrivacy.shown(value, noLog: LogPrivacy.noLog))
    }
}

extension Logger.MetadataValue.StringInterpolation {
    /// The same in a metadata value: `metadata: ["client": "\(personal: address)"]`.
    public mutating func appendInterpolation(personal value: some Any) {
        appendLiteral(LogPrivacy.shown(value, noLog: LogPrivacy.noLog))
    }
}
