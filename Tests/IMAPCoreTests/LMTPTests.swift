import ChatmailTestSupport
import Synchronization
import Testing

@testable import IMAPCore

final class FakeBackend: LMTPBackend {
    let known: Set<String>
    let full: Set<String>
    let delivered = Mutex<[([UInt8], [String])]>([])
    let senders = Mutex<[String]>([])
    let failing: Bool

    init(known: Set<String>, full: Set<String> = [], failing: Bool = false) {
        self.known = known
        self.full = full
        self.failing = failing
    }

    func recipientExists(_ address: String) throws -> Bool { known.contains(address) }

    func deliver(_ message: [UInt8], from sender: String, to recipients: [String]) throws -> [DeliveryResult] {
        struct Failure: Error {}
        if failing { throw Failure() }
        senders.withLock { $0.append(sender) }
        delivered.withLock { $0.append((message, recipients)) }
        return recipients.map { full.contains($0) ? .overQuota : .delivered }
    }
}

@Suite struct LMTPTests {
    func run(_ backend: FakeBackend, _ lines: [String], chunk: Int = .max, maxSize: Int = 1000) -> [String] {
        var settings = LMTPSession.Settings()
        settings.maxMessageSize = maxSize
        var session = LMTPSession(settings: settings, backend: backend)
        let bytes = Array(lines.map { $0 + "\r\n" }.joined().utf8)
        var replies: [String] = []
        var index = 0
        while index < bytes.count {
            let output = session.receive(bytes[index..<min(bytes.count, index + chunk)])
            replies += output.replies
            index += chunk
            if output.close { break }
        }
        return replies.joined().split(separator: "\r\n").map(String.init)
    }

    @Test func postfixStyleTransaction() {
        let backend = FakeBackend(known: ["a@x", "b@x"], full: ["b@x"])
        let lines = [
            "LHLO mx", "MAIL FROM:<s@y> BODY=8BITMIME SMTPUTF8 SIZE=40", "RCPT TO:<a@x>", "RCPT TO:<nobody@x>",
            "RCPT TO:<b@x>",
            "DATA", "Subject: hi", "", "..dot", ".", "QUIT",
        ]
        let expected = [
            "250-localhost", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-SMTPUTF8",
            "250 SIZE 1000",
            "250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 <nobody@x>: no such user", "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 <a@x> delivered", "552 5.2.2 <b@x>: mailbox full",
            "221 2.0.0 Bye",
        ]
        #expect(run(backend, lines) == expected)
        #expect(run(FakeBackend(known: ["a@x", "b@x"], full: ["b@x"]), lines, chunk: 1) == expected)
        #expect(backend.delivered.withLock { $0.map(\.1) } == [["a@x", "b@x"]])
        #expect(backend.delivered.withLock { $0.first?.0 } == Array("Subject: hi\r\n\r\n.dot\r\n".utf8))
        // The envelope sender reaches the backend (push notifications skip self-sent mail).
        #expect(backend.senders.withLock { $0 } == ["s@y"])
    }

    @Test func refusals() {
        let backend = FakeBackend(known: ["a@x"])
        #expect(run(backend, ["MAIL FROM:<s@y>"]) == ["503 5.5.1 LHLO first"])
        #expect(run(backend, ["EHLO x"]) == ["500 5.5.1 This is LMTP: use LHLO"])
        #expect(run(backend, ["LHLO x", "MAIL FROM:<s@y> SIZE=5000"]).last == "552 5.3.4 Message too large")
        #expect(run(backend, ["LHLO x", "MAIL FROM:<s@y>", "DATA"]).last == "503 5.5.1 No valid recipients")
        #expect(run(backend, ["LHLO x", "MAIL FROM:s@y"]).last == "501 5.5.4 Syntax: MAIL FROM:<address>")
        #expect(run(backend, ["LHLO x", "FROB"]).last == "500 5.5.2 Unknown command")
        #expect(run(backend, ["LHLO x", String(repeating: "x", count: 5000)]).last == "500 5.5.2 Line too long")
        let big = ["LHLO x", "MAIL FROM:<>", "RCPT TO:<a@x>", "DATA", String(repeating: "y", count: 2000), ".", "NOOP"]
        #expect(run(backend, big).suffix(2) == ["552 5.3.4 <a@x>: message too large", "250 2.0.0 Ok"])
        #expect(backend.delivered.withLock { $0.isEmpty })
        let failing = FakeBackend(known: ["a@x"], failing: true)
        #expect(
            run(failing, ["LHLO x", "MAIL FROM:<>", "RCPT TO:<a@x>", "DATA", "x", "."]).last
                == "451 4.3.0 <a@x>: temporary failure")
    }

    /// A 24 MiB data line without a line end, in 64 KiB reads: every byte is looked at about once
    /// (the framer used to rescan the whole line on every read: quadratic).
    @Test func aLongLineIsScannedOnce() {
        let backend = FakeBackend(known: ["a@x"])
        var settings = LMTPSession.Settings()
        settings.maxMessageSize = 30 << 20
        var session = LMTPSession(settings: settings, backend: backend)
        _ = session.receive(Array("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nDATA\r\n".utf8))
        let before = session.scannedBytes
        let size = 24 << 20
        let chunk = [UInt8](repeating: UInt8(ascii: "y"), count: 65536)
        for _ in 0..<(size / chunk.count) { #expect(session.receive(chunk).replies.isEmpty) }
        #expect(session.receive(Array("\r\n.\r\n".utf8)).replies == ["250 2.0.0 <a@x> delivered\r\n"])
        #expect(session.scannedBytes - before <= 2 * size)
        #expect(backend.delivered.withLock { $0.first?.0.count } == size + 2)
    }

    /// Data cut anywhere gives the same message: dot-stuffing, lone CRs, a dot line that is not
    /// the end, CRLF split across reads.
    @Test func dataCutAnywhere() {
        let lines = ["LHLO x", "MAIL FROM:<>", "RCPT TO:<a@x>", "DATA", "a\rb\r", "..x", ".", "QUIT"]
        let data = ["LHLO x", "MAIL FROM:<>", "RCPT TO:<a@x>", "DATA", "..", ".\r.", "x\r\ry", "", ".", "QUIT"]
        for chunk in 1...9 {
            let backend = FakeBackend(known: ["a@x"])
            #expect(run(backend, lines, chunk: chunk).suffix(2) == ["250 2.0.0 <a@x> delivered", "221 2.0.0 Bye"])
            #expect(backend.delivered.withLock { $0.first?.0 } == Array("a\rb\r\r\n.x\r\n".utf8))
            let second = FakeBackend(known: ["a@x"])
            #expect(run(second, data, chunk: chunk).suffix(2) == ["250 2.0.0 <a@x> delivered", "221 2.0.0 Bye"])
            #expect(second.delivered.withLock { $0.first?.0 } == Array(".\r\n\r.\r\nx\r\ry\r\n\r\n".utf8))
        }
    }

    @Test func fuzz() {
        var rng = SeededGenerator(seed: 99)
        let backend = FakeBackend(known: ["a@x"])
        let words = [
            "LHLO x", "MAIL FROM:<s@y>", "RCPT TO:<a@x>", "RCPT TO:<b@x>", "DATA", ".", "RSET", "QUIT", "x", "",
        ]
        for _ in 0..<500 {
            var bytes = Array(
                (0..<Int.random(in: 1...12, using: &rng)).map { _ in words.randomElement(using: &rng)! + "\r\n" }
                    .joined().utf8)
            for _ in 0..<Int.random(in: 0...5, using: &rng) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            var session = LMTPSession(settings: LMTPSession.Settings(), backend: backend)
            _ = session.receive(bytes)
        }
    }
}
