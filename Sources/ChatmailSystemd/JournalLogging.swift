import CSystemd
import Glibc
import Logging
import Synchronization

/// Logging to the systemd journal with a priority per line, or in swift-log's plain format when
/// there is no journal.
///
/// systemd connects a service's stderr to the journal through a stream socket and names it in
/// `JOURNAL_STREAM` (`device:inode`). Such a stream reads a leading `<N>` on each line as the
/// line's syslog priority (`SyslogLevelPrefix=`, on by default; `sd_journal_stream_fd`'s
/// `level_prefix`). The supervisor opens one stream per child under the child's own identifier
/// and hands it over as stdout and stderr, so `journalctl -t chatmail-turn -p warning` works.
public enum JournalLogging {
    /// The identifier lines appear under (`journalctl -t`), e.g. `chatmail-imap`.
    public typealias Identifier = String

    /// Whether `JOURNAL_STREAM` names the file whose device and inode are given.
    public static func names(journalStream value: String?, device: UInt64, inode: UInt64) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        return dev == device && ino == inode
    }

    /// Whether `descriptor` (stderr by default) is the journal stream `JOURNAL_STREAM` names.
    /// False when the variable is unset or names another file, e.g. after a shell redirected stderr.
    public static func isJournal(_ descriptor: Int32 = 2, environment: [String: String]) -> Bool {
        guard let identity = fileIdentity(descriptor) else { return false }
        return names(journalStream: environment["JOURNAL_STREAM"], device: identity.device, inode: identity.inode)
    }

    /// The `JOURNAL_STREAM` value (`device:inode`) for an open file.
    public static func journalStreamValue(of descriptor: Int32) -> String? {
        fileIdentity(descriptor).map { "\($0.device):\($0.inode)" }
    }

    /// The syslog priority of a swift-log level (sd-daemon.h's `SD_*` values).
    public static func priority(of level: Logger.Level) -> Int32 {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `text` with the priority prefix on every line, newline-terminated: the journal reads a
    /// prefix per line, so a multi-line message keeps its priority on each of its lines.
    public static func prefixed(_ text: String, priority: Int32) -> String {
        let prefix = "<\(priority)>"
        var result = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            result += prefix
            result += line
            result += "\n"
        }
        return result
    }

    /// One log line for the journal, without time and identifier (the journal adds both): the
    /// message, then the metadata sorted by key; `label` only when it differs from the identifier.
    public static func line(
        level: Logger.Level, message: String, metadata: Logger.Metadata, label: String, identifier: Identifier
    ) -> String {
        var text = label == identifier ? message : "\(label): \(message)"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            text += " \(key)=\(value)"
        }
        return prefixed(text, priority: priority(of: level))
    }

    /// Installs the process-wide log handler: journal lines when stderr is the journal, else
    /// swift-log's plain stderr format. Call once, from `main`.
    public static func bootstrap(identifier: Identifier, environment: [String: String]) {
        if isJournal(environment: environment) {
            LoggingSystem.bootstrap { label in JournalLogHandler(label: label, identifier: identifier) }
        } else {
            LoggingSystem.bootstrap(StreamLogHandler.standardError)
        }
    }

    /// A new journal stream for a child's stdout and stderr, under `identifier`, whose lines
    /// carry their own priority prefix (unprefixed lines get `priority`). Nil (with errno) when
    /// the journal cannot be reached.
    public static func openStream(identifier: Identifier, priority: Int32 = 6) -> Int32? {
        let fd = sd_journal_stream_fd(identifier, priority, 1)
        guard fd >= 0 else {
            errno = -fd
            return nil
        }
        return fd
    }

    private static func fileIdentity(_ descriptor: Int32) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }
}

/// Writes each message as `<N>`-prefixed lines to stderr (or `descriptor`), a journal stream.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let label: String
    let identifier: JournalLogging.Identifier
    let descriptor: Int32

    /// Serializes writes so that concurrent messages never interleave within a line.
    private static let writeLock = Mutex(())

    public init(label: String, identifier: JournalLogging.Identifier, descriptor: Int32 = 2) {
        self.label = label
        self.identifier = identifier
        self.descriptor = descriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let text = JournalLogging.line(
            level: event.level, message: event.message.description, metadata: all, label: label,
            identifier: identifier)
        Self.writeLock.withLock { _ in
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
