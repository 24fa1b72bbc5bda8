import Testing

@testable import IMAPCore

/// The Dovecot auth protocol's server side, line by line, as Postfix's xsasl_dovecot_server.c
/// speaks it.
@Suite struct DovecotAuthTests {
    typealias Session = DovecotAuthSession

    static func b64(_ text: String) -> String { Base64.encode(Array(text.utf8)) }

    func session(plaintext: Bool = false, configure: (inout Session.Settings) -> Void = { _ in }) -> Session {
        var settings = Session.Settings()
        settings.allowPlaintext = plaintext
        settings.processID = 42
        settings.connectionID = 7
        settings.cookie = "0123456789abcdef0123456789abcdef"
        configure(&settings)
        var session = Session(settings: settings)
        #expect(session.receive(Array("VERSION\t1\t0\nCPID\t1234\n".utf8)) == [])
        return session
    }

    func send(_ session: inout Session, _ line: String) -> [Session.Action] {
        session.receive(Array((line + "\n").utf8))
    }

    @Test func handshakeListsEveryMechanismBeforeSPID() {
        let lines = Session(
            settings: {
                var settings = Session.Settings()
                settings.processID = 42
                settings.connectionID = 7
                settings.cookie = "0123456789abcdef0123456789abcdef"
                return settings
            }()
        ).handshake.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(
            lines == [
                "VERSION\t1\t2", "MECH\tPLAIN\tplaintext", "MECH\tLOGIN\tplaintext", "SPID\t42", "CUID\t7",
                "COOKIE\t0123456789abcdef0123456789abcdef", "DONE", "",
            ])
    }

    @Test func plainWithInitialResponse() {
        var s = session()
        let auth =
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tsecured\tresp="
            + Self.b64("\0alice0001@example.org\0password123")
        let credentials = Session.Credentials(
            id: 1, user: "alice0001@example.org", password: "password123", remoteAddress: "192.0.2.7")
        #expect(send(&s, auth) == [.verify(credentials)])
        #expect(
            s.verified(1, .accepted(user: "alice0001@example.org")) == [.send("OK\t1\tuser=alice0001@example.org\n")])
    }

    /// Every exchange that ends is tallied once: accepted, rejected by the store, and refused by
    /// the session itself (bad base64, unknown mechanism); a challenge is not an end.
    @Test func tallyCountsEveryEndedExchange() {
        var s = session()
        let plain = { (id: Int) in
            "AUTH\t\(id)\tPLAIN\tservice=smtp\trip=192.0.2.7\tsecured\tresp=" + Self.b64("\0a@example.org\0pw")
        }
        _ = send(&s, plain(1))
        _ = s.verified(1, .accepted(user: "a@example.org"))
        _ = send(&s, plain(2))
        _ = s.verified(2, .blocked)
        _ = send(&s, "AUTH\t3\tPLAIN\tservice=smtp\tsecured\tresp=!!!")
        _ = send(&s, "AUTH\t4\tCRAM-MD5\tservice=smtp\tsecured")
        _ = send(&s, "AUTH\t5\tLOGIN\tservice=smtp\tsecured")
        #expect(s.takeTally() == Session.Tally(succeeded: 1, failed: 3))
        #expect(s.takeTally() == Session.Tally())
    }

    @Test func plainWithoutInitialResponseGetsAnEmptyContinuation() {
        var s = session()
        #expect(send(&s, "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=::1\trip=::1\tsecured") == [.send("CONT\t1\t\n")])
        let response = Self.b64("alice0001@example.org\0alice0001@example.org\0password123")
        #expect(
            send(&s, "CONT\t1\t" + response) == [
                .verify(.init(id: 1, user: "alice0001@example.org", password: "password123", remoteAddress: "::1"))
            ])
        #expect(
            s.verified(1, .rejected) == [
                .send("FAIL\t1\tuser=alice0001@example.org\treason=Authentication failed\n")
            ])
    }

    @Test func loginAsksForTheUserThenThePassword() {
        var s = session()
        #expect(
            send(&s, "AUTH\t3\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured") == [
                .send("CONT\t3\tVXNlcm5hbWU6\n")
            ])
        #expect(send(&s, "CONT\t3\t" + Self.b64("bobby0001@example.org")) == [.send("CONT\t3\tUGFzc3dvcmQ6\n")])
        #expect(
            send(&s, "CONT\t3\t" + Self.b64("password123")) == [
                .verify(
                    .init(id: 3, user: "bobby0001@example.org", password: "password123", remoteAddress: "127.0.0.1"))
            ])
        #expect(
            s.verified(3, .accepted(user: "bobby0001@example.org")) == [.send("OK\t3\tuser=bobby0001@example.org\n")])
    }

    @Test func loginWithInitialResponseTakesItAsTheUser() {
        var s = session()
        #expect(
            send(&s, "AUTH\t4\tLOGIN\tservice=smtp\tnologin\tsecured\tresp=" + Self.b64("bobby0001@example.org")) == [
                .send("CONT\t4\tUGFzc3dvcmQ6\n")
            ])
        #expect(
            send(&s, "CONT\t4\t" + Self.b64("password123")) == [
                .verify(.init(id: 4, user: "bobby0001@example.org", password: "password123", remoteAddress: nil))
            ])
        #expect(
            s.verified(4, .accepted(user: "bobby0001@example.org")) == [.send("OK\t4\tuser=bobby0001@example.org\n")])
    }

    @Test func requestsReuseTheConnectionAndLinesWaitForTheVerdict() {
        var s = session()
        let first = "AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0alice0001@example.org\0password123")
        let second = "AUTH\t2\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0bobby0001@example.org\0password456")
        // Both arrive at once: the second waits until the first is answered.
        let actions = s.receive(Array((first + "\n" + second + "\n").utf8))
        #expect(
            actions == [
                .verify(.init(id: 1, user: "alice0001@example.org", password: "password123", remoteAddress: nil))
            ])
        #expect(s.isVerifying)
        #expect(s.verified(2, .accepted(user: "x")) == [], "a verdict for another id is ignored")
        #expect(
            s.verified(1, .temporaryFailure) == [
                .send("FAIL\t1\tuser=alice0001@example.org\ttemp\treason=Temporary authentication failure\n"),
                .verify(.init(id: 2, user: "bobby0001@example.org", password: "password456", remoteAddress: nil)),
            ])
        #expect(
            s.verified(2, .blocked) == [
                .send("FAIL\t2\tuser=bobby0001@example.org\treason=Too many failed logins, try later\n")
            ])
    }

    @Test func aCreationLimitedSourceIsTold() {
        var s = session()
        let auth = "AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0alice0001@example.org\0password123")
        #expect(send(&s, auth).count == 1)
        #expect(
            s.verified(1, .creationLimited) == [
                .send(
                    "FAIL\t1\tuser=alice0001@example.org\treason=Too many new accounts from your address, try later\n")
            ])
    }

    @Test func plaintextNeedsSecuredUnlessAllowed() {
        var s = session()
        let auth = "AUTH\t1\tPLAIN\tservice=smtp\tresp=" + Self.b64("\0alice0001@example.org\0password123")
        #expect(
            send(&s, auth) == [.send("FAIL\t1\treason=Plaintext authentication disallowed on non-secure connections\n")]
        )
        var open = session(plaintext: true)
        #expect(send(&open, auth).count == 1 && open.isVerifying)
    }

    @Test func refusalsThatKeepTheConnection() {
        var s = session()
        #expect(
            send(&s, "AUTH\t1\tCRAM-MD5\tservice=smtp\tsecured") == [
                .send("FAIL\t1\treason=Unsupported authentication mechanism\n")
            ])
        #expect(
            send(&s, "AUTH\t2\tPLAIN\tservice=smtp\tsecured\tresp=!!!!") == [
                .send("FAIL\t2\treason=Invalid base64 data\n")
            ])
        #expect(
            send(&s, "AUTH\t3\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("nonuls")) == [
                .send("FAIL\t3\treason=Invalid PLAIN response\n")
            ])
        #expect(
            send(&s, "AUTH\t4\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("admin\0alice0001@example.org\0pw")) == [
                .send("FAIL\t4\tuser=alice0001@example.org\treason=Authorization identity not allowed\n")
            ])
        // NUL in a LOGIN user name, a control character in a PLAIN one, NUL in a password.
        #expect(
            send(&s, "AUTH\t5\tLOGIN\tservice=smtp\tsecured\tresp=" + Self.b64("alice\0x@example.org")) == [
                .send("FAIL\t5\treason=Invalid user name\n")
            ])
        #expect(
            send(&s, "AUTH\t6\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0alice\tx@example.org\0pw")) == [
                .send("FAIL\t6\treason=Invalid user name\n")
            ])
        #expect(
            send(&s, "AUTH\t7\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0alice0001@example.org\0pass\0word"))
                == [
                    .send("FAIL\t7\tuser=alice0001@example.org\treason=Authentication failed\n")
                ])
        #expect(send(&s, "CONT\t99\tAAAA") == [.send("FAIL\t99\treason=Authentication request timed out\n")])
        #expect(
            send(&s, "AUTH\t8\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0\0password123")) == [
                .send("FAIL\t8\treason=Invalid user name\n")
            ])
        #expect(!s.isClosed)
    }

    @Test(arguments: [
        "AUTH\t1\tPLAIN\tservice=smtp",  // before VERSION
        "VERSION\t2\t0",  // another major version
        "garbage",
        "VERSION\t1\t0\nAUTH\t1\tPLAIN\tservice=smtp",  // before CPID
        "VERSION\t1\t0\nCPID\t1\nHELLO",  // unknown command
        "VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN",  // no service
        "VERSION\t1\t0\nCPID\t1\nAUTH\t0\tPLAIN\tservice=smtp",  // id 0
        "VERSION\t1\t0\nCPID\t1\nAUTH\tx\tPLAIN\tservice=smtp",
        "VERSION\t1\t0\nCPID\t1\nCONT",
        "VERSION\t1\t0\nCPID\t1\n\u{FF}",
    ])
    func protocolErrorsClose(_ input: String) {
        var s = Session(settings: .init())
        var bytes = Array((input + "\n").utf8)
        if input.hasSuffix("\u{FF}") { bytes = Array("VERSION\t1\t0\nCPID\t1\n".utf8) + [0xFF, 0x0A] }
        let actions = s.receive(bytes)
        #expect(actions.last == .close)
        #expect(s.isClosed)
        #expect(s.receive(Array("VERSION\t1\t0\n".utf8)) == [])
    }

    @Test func aDuplicatePendingIdCloses() {
        var s = session()
        #expect(send(&s, "AUTH\t1\tPLAIN\tservice=smtp\tsecured") == [.send("CONT\t1\t\n")])
        #expect(send(&s, "AUTH\t1\tPLAIN\tservice=smtp\tsecured") == [.close])
    }

    @Test func linesOverTheCapClose() {
        var s = session { $0.maxLineLength = 100 }
        // A complete long line, and a long partial line without its LF.
        #expect(
            send(&s, "AUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=" + String(repeating: "A", count: 100)) == [.close])
        var partial = session { $0.maxLineLength = 100 }
        #expect(partial.receive(Array(repeating: UInt8(ascii: "A"), count: 60)) == [])
        #expect(partial.receive(Array(repeating: UInt8(ascii: "A"), count: 60)) == [.close])
    }

    @Test func abandonedExchangesAreBounded() {
        var s = session { $0.maxPendingRequests = 2 }
        for id in 1...3 { #expect(send(&s, "AUTH\t\(id)\tPLAIN\tservice=smtp\tsecured") == [.send("CONT\t\(id)\t\n")]) }
        // The oldest was dropped; the others still run.
        #expect(
            send(&s, "CONT\t1\t" + Self.b64("\0a\0b")) == [.send("FAIL\t1\treason=Authentication request timed out\n")])
        #expect(
            send(&s, "CONT\t3\t" + Self.b64("\0a\0b")).first
                == .verify(.init(id: 3, user: "a", password: "b", remoteAddress: nil)))
    }

    @Test func bytesMayArriveInAnyPieces() {
        var s = Session(settings: .init())
        let text = "VERSION\t1\t0\nCPID\t9\nAUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=" + Self.b64("\0u@x\0pw") + "\n"
        var actions: [Session.Action] = []
        for byte in text.utf8 { actions += s.receive([byte]) }
        #expect(actions == [.verify(.init(id: 1, user: "u@x", password: "pw", remoteAddress: nil))])
    }

    @Test func escaping() {
        #expect(Session.escape("a\tb\nc\rd\u{1}e") == "a\u{1}tb\u{1}nc\u{1}rd\u{1}1e")
        #expect(Session.unescape("a\u{1}tb\u{1}nc\u{1}rd\u{1}1e") == "a\tb\nc\rd\u{1}e")
        #expect(Session.parameter("rip=1.2.3.4\u{1}t") == ("rip", "1.2.3.4\t"))
        #expect(Session.parameter("secured") == ("secured", nil))
    }

    @Test func base64() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            #expect(Base64.decode(Base64.encode(Array(text.utf8))) == Array(text.utf8))
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        for bad in ["Zm9", "Zm=v", "Z===", "=Zm8", "Zm8=Zm8=", "Zm 8", "Zm9v\n"] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
    }
}
