import CChatmailShims
import CSystemd

/// Talks to systemd (or any listener named by `NOTIFY_SOCKET`) through libsystemd's sd_notify.
/// Without `NOTIFY_SOCKET` every call does nothing.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends `KEY=VALUE` lines as one datagram. Returns false when there is no listener.
    @discardableResult
    public func send(_ fields: [String: String]) -> Bool {
        let text = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        return sd_notify(0, text) > 0
    }

    public func ready(status: String) { send(["READY": "1", "STATUS": status]) }

    public func status(_ text: String) { send(["STATUS": text]) }

    /// `RELOADING=1` with `MONOTONIC_USEC` in one datagram, as `Type=notify-reload` requires.
    public func reloading() { send(["RELOADING": "1", "MONOTONIC_USEC": String(cm_monotonic_usec())]) }

    public func stopping() { send(["STOPPING": "1"]) }

    public func watchdog() { send(["WATCHDOG": "1"]) }

    /// The watchdog interval systemd expects pings within, when it applies to this process.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(usec)
    }
}
