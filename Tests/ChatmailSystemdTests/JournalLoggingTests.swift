import ChatmailSystemd
import Glibc
import Logging
import Testing

@Suite struct JournalLoggingTests {
    @Test func journalStreamNamesDeviceAndInode() {
        #expect(JournalLogging.names(journalStream: "8:12345", device: 8, inode: 12345))
        #expect(!JournalLogging.names(journalStream: "8:12346", device: 8, inode: 12345))
        #expect(!JournalLogging.names(journalStream: "9:12345", device: 8, inode: 12345))
        #expect(!JournalLogging.names(journalStream: nil, device: 8, inode: 12345))
        for bad in ["", "8", "8:", ":12345", "8:12345:1", "x:y", "-8:12345"] {
            #expect(!JournalLogging.names(journalStream: bad, device: 8, inode: 12345), "\(bad)")
        }
    }

    /// The format choice: journal lines only when `JOURNAL_STREAM` names the very file the
    /// descriptor is, not merely when the variable is set (a shell may have redirected stderr).
    @Test func journalFormatOnlyForTheNamedStream() throws {
        let (a, b) = try socketPair()
        defer {
            close(a)
            close(b)
        }
        let value = try #require(JournalLogging.journalStreamValue(of: a))
        #expect(JournalLogging.isJournal(a, environment: ["JOURNAL_STREAM": value]))
        #expect(!JournalLogging.isJournal(b, environment: ["JOURNAL_STREAM": value]))
        #expect(!JournalLogging.isJournal(a, environment: [:]))
        #expect(!JournalLogging.isJournal(-1, environment: ["JOURNAL_STREAM": value]))
    }

    @Test func levelsMapToSyslogPriorities() {
        let expected: [(Logger.Level, Int32)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected {
            #expect(JournalLogging.priority(of: level) == priority, "\(level)")
        }
    }

    @Test func everyLineCarriesThePrefix() {
        #expect(JournalLogging.prefixed("one", priority: 4) == "<4>one\n")
        #expect(JournalLogging.prefixed("one\ntwo", priority: 3) == "<3>one\n<3>two\n")
    }

    @Test func lineHasMessageThenSortedMetadataAndForeignLabels() {
        let own = JournalLogging.line(
            level: .warning, message: "turn exited", metadata: ["status": "1", "pid": "42"],
            label: "chatmail-supervisor", identifier: "chatmail-supervisor")
        #expect(own == "<4>turn exited pid=42 status=1\n")
        let other = JournalLogging.line(
            level: .info, message: "bound", metadata: [:], label: "listeners", identifier: "chatmail-turn")
        #expect(other == "<6>listeners: bound\n")
    }

    @Test func handlerWritesPrefixedLines() throws {
        let (a, b) = try socketPair()
        defer {
            close(a)
            close(b)
        }
        var logger = Logger(label: "chatmail-imap") {
            JournalLogHandler(label: $0, identifier: "chatmail-imap", descriptor: a)
        }
        logger[metadataKey: "peer"] = "x"
        logger.error("login failed", metadata: ["user": "u"])
        logger.debug("not shown at the default level")
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(b, &buffer, buffer.count)
        #expect(String(decoding: buffer[..<max(count, 0)], as: UTF8.self) == "<3>login failed peer=x user=u\n")
    }

    private func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw Errno(rawValue: errno)
        }
        return (fds[0], fds[1])
    }

    struct Errno: Error { var rawValue: Int32 }
}
