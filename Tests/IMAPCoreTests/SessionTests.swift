import Testing

@testable import IMAPCore

/// Drives a session the way the server does: bytes in, response text out.
struct Driver {
    var framer = CommandFramer()
    var session: IMAPSession
    var effects: [SessionEffect] = []

    init(store: MemoryMailStore, configuration: SessionConfiguration = SessionConfiguration()) {
        session = IMAPSession(configuration: configuration, store: store)
    }

    /// Sends `text` (CRLF added) and returns every response line, literals inline.
    mutating func send(_ text: String) -> [String] {
        framer.feed(Array((text + "\r\n").utf8))
        var out: [String] = []
        while let event = framer.next() {
            let outcome: SessionOutcome
            switch event {
            case .continuationNeeded:
                out.append(IMAPSession.continuationRequest.text)
                continue
            case .command(let frame): outcome = session.receive(frame)
            default: outcome = session.framingFailed(event)
            }
            out += outcome.responses.map(\.text)
            if let effect = outcome.effect { effects.append(effect) }
        }
        return out
    }
}

@Suite struct SessionTests {
    let store = MemoryMailStore()
    let message = "From: a@x\r\nMessage-ID: <m1@x>\r\nSubject: hi\r\n\r\nHello\r\n"

    init() {
        store.addAccount("user@example.org", password: "secret")
    }

    func loggedIn(_ configuration: SessionConfiguration = SessionConfiguration()) -> Driver {
        var driver = Driver(store: store, configuration: configuration)
        _ = driver.send("a LOGIN user@example.org secret")
        return driver
    }

    @Test func greetingAndLogin() {
        var configuration = SessionConfiguration()
        configuration.startTLSAvailable = true
        var driver = Driver(store: store, configuration: configuration)
        #expect(
            driver.session.greeting.text == "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID IDLE STARTTLS] chatmail IMAP ready")
        #expect(
            driver.send("a CAPABILITY") == [
                "* CAPABILITY IMAP4rev1 LITERAL+ ID IDLE STARTTLS", "a OK CAPABILITY completed",
            ])
        #expect(driver.send("b SELECT INBOX") == ["b NO Not authenticated"])
        #expect(driver.send("c LOGIN user@example.org wrong") == ["c NO [AUTHENTICATIONFAILED] Authentication failed"])
        driver.session.loginBlocked = true
        #expect(
            driver.send("c2 LOGIN user@example.org secret") == ["c2 NO [UNAVAILABLE] Too many failed logins, try later"]
        )
        driver.session.loginBlocked = false
        driver.session.admit = { _ in false }
        #expect(driver.send("c3 LOGIN user@example.org secret") == ["c3 NO [LIMIT] Too many sessions for this account"])
        driver.session.admit = nil
        #expect(
            driver.send("d LOGIN {16}\r\nUSER@example.org \"secret\"") == [
                "+ Ready for literal data",
                "d OK [CAPABILITY IMAP4rev1 LITERAL+ ID IDLE MOVE UIDPLUS UNSELECT QUOTA METADATA XCHATMAIL COMPRESS=DEFLATE] Logged in",
            ])
        // Every LOGIN that did not log in is a failed login; only wrong credentials count per source.
        #expect(
            driver.effects == [
                .loginFailed(checked: true, closing: false), .loginFailed(checked: false, closing: false),
                .loginFailed(checked: false, closing: false),
                .authenticated(Account(id: 1, address: "user@example.org")),
            ])
        #expect(driver.send("e LOGIN x y") == ["e BAD Already authenticated"])
        #expect(driver.send("f STARTTLS") == ["f BAD STARTTLS not available"])
    }

    @Test func startTLSOnlyBeforeLogin() {
        var configuration = SessionConfiguration()
        configuration.startTLSAvailable = true
        configuration.loginRequiresTLS = true
        var driver = Driver(store: store, configuration: configuration)
        #expect(driver.send("a LOGIN user@example.org secret") == ["a NO [PRIVACYREQUIRED] Use STARTTLS first"])
        #expect(driver.send("b STARTTLS") == ["b OK Begin TLS negotiation now"])
        #expect(driver.effects == [.loginFailed(checked: false, closing: false), .startTLS])
        driver.session.tlsStarted()
        #expect(driver.send("c CAPABILITY").first == "* CAPABILITY IMAP4rev1 LITERAL+ ID IDLE")
        #expect(driver.send("d LOGIN user@example.org secret").first?.hasPrefix("d OK") == true)
    }

    @Test func failedLoginsClose() {
        var driver = Driver(store: store)
        _ = driver.send("a LOGIN u x")
        _ = driver.send("b LOGIN u x")
        #expect(driver.send("c LOGIN u x").last == "* BYE Too many failed logins")
        // The last failure closes the connection and is still a failed login (counted, per source too).
        let failed = SessionEffect.loginFailed(checked: true, closing: false)
        #expect(driver.effects == [failed, failed, .loginFailed(checked: true, closing: true)])
    }

    @Test func badCommandsClose() {
        var driver = Driver(store: store)
        for index in 0..<9 { #expect(driver.send("t\(index) FROB") == ["t\(index) BAD Unknown command"]) }
        #expect(driver.send("x FROB").last == "* BYE Too many invalid commands")
        #expect(driver.effects == [.close])
    }

    @Test func selectFetchStoreClose() throws {
        try store.deliver(Array(message.utf8), to: "user@example.org")
        try store.deliver(Array(message.utf8), to: "user@example.org", flags: [Flag.seen])
        var driver = loggedIn()
        #expect(
            driver.send("b SELECT \"INBOX\"") == [
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
                "* 2 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen", "* OK [UIDVALIDITY 2] UIDs valid",
                "* OK [UIDNEXT 3] Predicted next UID", "b OK [READ-WRITE] SELECT completed",
            ])
        // A range past the last UID succeeds with what exists; UID comes first.
        #expect(
            driver.send("c UID FETCH 2:501 (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])") == [
                "* 2 FETCH (UID 2 RFC822.SIZE \(message.utf8.count) BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)] {35}\r\nMessage-ID: <m1@x>\r\nSubject: hi\r\n\r\n)",
                "c OK FETCH completed",
            ])
        #expect(driver.send("d UID FETCH 3:10 (UID)") == ["d OK FETCH completed"])
        #expect(
            driver.send("e FETCH 1 (FLAGS INTERNALDATE)") == [
                "* 1 FETCH (FLAGS () INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")", "e OK FETCH completed",
            ])
        // BODY[] (not PEEK) sets \Seen and reports it.
        #expect(
            driver.send("f UID FETCH 1 (BODY[])") == [
                "* 1 FETCH (UID 1 BODY[] {\(message.utf8.count)}\r\n\(message) FLAGS (\\Seen))", "f OK FETCH completed",
            ])
        #expect(driver.send("g FETCH 3 (UID)") == ["g BAD Invalid message sequence number"])
        #expect(
            driver.send("h UID STORE 1:2 +FLAGS (\\Deleted)") == [
                "* 1 FETCH (FLAGS (\\Deleted \\Seen) UID 1)", "* 2 FETCH (FLAGS (\\Deleted \\Seen) UID 2)",
                "h OK STORE completed",
            ])
        #expect(driver.send("i STORE 2 -FLAGS.SILENT (\\Deleted)") == ["i OK STORE completed"])
        #expect(driver.send("j CLOSE") == ["j OK CLOSE completed"])
        #expect(try store.uids(mailbox: 2) == [2])
        #expect(driver.send("k FETCH 1 (UID)") == ["k BAD No mailbox selected"])
        #expect(driver.send("l EXAMINE INBOX").last == "l OK [READ-ONLY] EXAMINE completed")
        #expect(driver.send("m STORE 1 +FLAGS (\\Deleted)") == ["m NO [READ-ONLY] Mailbox is read-only"])
    }

    @Test func expungeAndMove() throws {
        for _ in 0..<3 { try store.deliver(Array(message.utf8), to: "user@example.org") }
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        #expect(driver.send("c CREATE DeltaChat") == ["c OK CREATE completed"])
        #expect(driver.send("c2 CREATE DeltaChat") == ["c2 NO [ALREADYEXISTS] Mailbox exists"])
        #expect(
            driver.send("d UID MOVE 2 DeltaChat") == [
                "* OK [COPYUID 3 2 1] Moved", "* 2 EXPUNGE", "d OK MOVE completed",
            ])
        #expect(driver.send("e UID MOVE 3 Nowhere") == ["e NO [TRYCREATE] No such mailbox"])
        #expect(driver.send("f STORE 1:2 +FLAGS.SILENT (\\Deleted)") == ["f OK STORE completed"])
        #expect(driver.send("g UID EXPUNGE 3") == ["* 2 EXPUNGE", "g OK EXPUNGE completed"])
        #expect(driver.send("h EXPUNGE") == ["* 1 EXPUNGE", "h OK EXPUNGE completed"])
        #expect(
            driver.send("i STATUS DeltaChat (MESSAGES UIDNEXT UNSEEN)") == [
                "* STATUS \"DeltaChat\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)", "i OK STATUS completed",
            ])
        #expect(
            driver.send("j LIST \"\" \"*\"") == [
                "* LIST (\\HasNoChildren) \"/\" \"INBOX\"", "* LIST (\\HasNoChildren) \"/\" \"DeltaChat\"",
                "j OK LIST completed",
            ])
        #expect(
            driver.send("k LSUB \"\" \"Delta%\"") == [
                "* LSUB (\\HasNoChildren) \"/\" \"DeltaChat\"", "k OK LSUB completed",
            ])
        #expect(driver.send("l UID COPY 1 DeltaChat") == ["l OK COPY completed"])
        #expect(driver.send("m SEARCH UNSEEN") == ["* SEARCH", "m OK SEARCH completed"])
    }

    @Test func idleSeesDeliveryAtOnce() throws {
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        #expect(driver.send("c IDLE") == ["+ idling"])
        #expect(driver.session.keepalive().map(\.text) == ["* OK Still here"])
        try store.deliver(Array(message.utf8), to: "user@example.org")
        #expect(driver.session.selectedMailboxChanged().map(\.text) == ["* 1 EXISTS"])
        #expect(driver.send("DONE") == ["c OK IDLE terminated"])
        // Outside IDLE the news waits for the next command.
        try store.deliver(Array(message.utf8), to: "user@example.org")
        #expect(driver.session.selectedMailboxChanged().isEmpty)
        #expect(driver.send("d NOOP") == ["* 2 EXISTS", "d OK NOOP completed"])
        // Expunged elsewhere: reported, but not during a sequence-number FETCH.
        _ = try store.expunge(mailbox: 2, uids: [1])
        _ = driver.session.selectedMailboxChanged()
        #expect(driver.send("e FETCH 2 (UID)") == ["* 2 FETCH (UID 2)", "e OK FETCH completed"])
        #expect(driver.send("f NOOP") == ["* 1 EXPUNGE", "f OK NOOP completed"])
        #expect(driver.send("g IDLE") == ["+ idling"])
        #expect(driver.send("h NOOP") == ["g BAD Expected DONE"])
    }

    /// News that came in just before IDLE (while the client's last FETCH ran, or between it and
    /// IDLE) follows the continuation. Delta Chat (async-imap) reads everything before `+` as
    /// part of starting IDLE and waits for news after it: an EXISTS sent first is never acted on.
    @Test func idleSendsTheContinuationBeforeNewsThatWasWaiting() throws {
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        try store.deliver(Array(message.utf8), to: "user@example.org")
        #expect(driver.session.selectedMailboxChanged().isEmpty)
        #expect(driver.send("c IDLE") == ["+ idling", "* 1 EXISTS"])
        #expect(driver.send("DONE") == ["c OK IDLE terminated"])
        _ = try store.expunge(mailbox: 2, uids: [1])
        _ = driver.session.selectedMailboxChanged()
        #expect(driver.send("d IDLE") == ["+ idling", "* 1 EXPUNGE"])
    }

    /// The exact shape Delta Chat parses (deltachat-client.md §1.3, §7).
    @Test func getMetadataForDeltaChat() {
        var configuration = SessionConfiguration()
        configuration.serverMetadata = [
            "/shared/comment": "Chatmail server", "/shared/admin": "mailto:root@example.org",
            "/shared/vendor/deltachat/maxsmtprecipients": "1000",
            "/shared/vendor/deltachat/appversions": "{\"clients\":[]}",
        ]
        var driver = Driver(store: store, configuration: configuration)
        #expect(driver.send("A0007 GETMETADATA \"\" (/shared/comment)") == ["A0007 NO Not authenticated"])
        _ = driver.send("A0001 LOGIN user@example.org secret")
        driver.session.discoveryMetadata = [
            "/shared/vendor/deltachat/turn": "example.org:3478:1758650868:8Dqkyyu11MVESBqjbIylmB06rv8="
        ]
        let response = driver.send(
            "A0008 GETMETADATA \"\" (/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay /shared/vendor/deltachat/turn /shared/vendor/deltachat/maxsmtprecipients /shared/vendor/deltachat/appversions)"
        )
        #expect(
            response == [
                "* METADATA \"\" (/shared/comment \"Chatmail server\" /shared/admin \"mailto:root@example.org\" /shared/vendor/deltachat/turn \"example.org:3478:1758650868:8Dqkyyu11MVESBqjbIylmB06rv8=\" /shared/vendor/deltachat/maxsmtprecipients \"1000\" /shared/vendor/deltachat/appversions {14}\r\n{\"clients\":[]})",
                "A0008 OK GETMETADATA completed",
            ])
        #expect(
            driver.send("A0009 GETMETADATA \"\" (/shared/vendor/deltachat/irohrelay)") == [
                "A0009 OK GETMETADATA completed"
            ])
        #expect(
            driver.send("A0010 GETMETADATA \"\" /Shared/Comment") == [
                "* METADATA \"\" (/Shared/Comment \"Chatmail server\")", "A0010 OK GETMETADATA completed",
            ])
    }

    @Test func deviceTokensAreKeptPerDeviceAndNeverReadBack() throws {
        var driver = loggedIn()
        let account = try #require(try store.login(user: "user@example.org", password: "secret"))
        #expect(
            driver.send("b SETMETADATA \"INBOX\" (/private/devicetoken {9+}\r\nopenpgp:x)") == [
                "b OK SETMETADATA completed"
            ])
        #expect(
            driver.send("c SETMETADATA \"INBOX\" (/shared/comment \"x\")") == [
                "c NO [METADATA NOPRIVATE] Only private entries can be set"
            ])
        // A second device, the first one again (kept once), and NIL (removes nothing).
        #expect(
            driver.send("d SETMETADATA \"inbox\" (/private/devicetoken \"openpgp:y\")") == [
                "d OK SETMETADATA completed"
            ])
        #expect(
            driver.send("e SETMETADATA \"INBOX\" (/private/devicetoken \"openpgp:x\")") == [
                "e OK SETMETADATA completed"
            ])
        #expect(driver.send("f SETMETADATA \"INBOX\" (/private/devicetoken NIL)") == ["f OK SETMETADATA completed"])
        #expect(store.pushTokens(account: account) == [Array("openpgp:x".utf8), Array("openpgp:y".utf8)])
        // Tokens are secrets: GETMETADATA does not give them back.
        #expect(driver.send("g GETMETADATA \"INBOX\" (/private/devicetoken)") == ["g OK GETMETADATA completed"])
        #expect(
            driver.send("h SETMETADATA \"Nope\" (/private/devicetoken NIL)") == ["h NO [NONEXISTENT] No such mailbox"])
    }

    @Test func badDeviceTokensGetNo() throws {
        var configuration = SessionConfiguration()
        configuration.maxPushTokenSize = 16
        var driver = loggedIn(configuration)
        let account = try #require(try store.login(user: "user@example.org", password: "secret"))
        #expect(driver.send("b SETMETADATA \"INBOX\" (/private/devicetoken \"\")") == ["b NO Empty device token"])
        #expect(
            driver.send("c SETMETADATA \"INBOX\" (/private/devicetoken \"\(String(repeating: "a", count: 17))\")") == [
                "c NO [METADATA MAXSIZE 16] Device token too long"
            ])
        for (tag, bytes) in [("d", "a\rb"), ("e", "a\nb"), ("f", "a\u{0}b"), ("g", "a b"), ("h", "ä")] {
            #expect(
                driver.send("\(tag) SETMETADATA \"INBOX\" (/private/devicetoken {\(bytes.utf8.count)+}\r\n\(bytes))")
                    == [
                        "\(tag) NO Device token must be printable ASCII without spaces"
                    ])
        }
        #expect(store.pushTokens(account: account).isEmpty)
        // The count per account is bounded: beyond it a new token gets NO, a known one is fine.
        for index in 0..<store.maxPushTokens {
            #expect(
                driver.send("i SETMETADATA \"INBOX\" (/private/devicetoken \"t\(index)\")") == [
                    "i OK SETMETADATA completed"
                ])
        }
        #expect(
            driver.send("j SETMETADATA \"INBOX\" (/private/devicetoken \"new\")") == [
                "j NO [METADATA TOOMANY] Too many device tokens"
            ])
        #expect(driver.send("k SETMETADATA \"INBOX\" (/private/devicetoken \"t0\")") == ["k OK SETMETADATA completed"])
        #expect(store.pushTokens(account: account).count == store.maxPushTokens)
    }

    @Test func xdeltapushIsAdvertisedAfterLoginWhenPushIsOn() {
        var configuration = SessionConfiguration()
        configuration.push = true
        var driver = Driver(store: store, configuration: configuration)
        #expect(!driver.session.capabilities.contains("XDELTAPUSH"))
        _ = driver.send("a LOGIN user@example.org secret")
        #expect(driver.session.capabilities.contains("XDELTAPUSH"))
        #expect(!loggedIn().session.capabilities.contains("XDELTAPUSH"))
    }

    @Test func quotaIdCompressLogout() throws {
        try store.deliver(Array(repeating: UInt8(ascii: "x"), count: 2000), to: "user@example.org")
        var driver = loggedIn()
        #expect(
            driver.send("b GETQUOTAROOT \"INBOX\"") == [
                "* QUOTAROOT \"INBOX\" \"\"", "* QUOTA \"\" (STORAGE 2 102400)", "b OK GETQUOTAROOT completed",
            ])
        #expect(
            driver.send("c ID (\"name\" \"Delta Chat\")") == [
                "* ID (\"name\" \"chatmail-swift\")", "c OK ID completed",
            ])
        #expect(driver.send("d COMPRESS DEFLATE") == ["d OK DEFLATE active"])
        driver.session.compressionStarted()
        #expect(driver.send("e COMPRESS DEFLATE") == ["e NO [COMPRESSIONACTIVE] Already compressing"])
        #expect(driver.send("f LOGOUT") == ["* BYE Logging out", "f OK LOGOUT completed"])
        #expect(driver.effects.suffix(2) == [.startCompression, .close])
    }

    /// Issue 12: LIST with thousands of wildcards pinned a worker; now a pattern over the bound
    /// is refused and one within it is matched in polynomial time.
    @Test func listPatternsAreBounded() {
        var driver = loggedIn()
        let tooLong = String(repeating: "%*", count: 1000) + "a"
        #expect(driver.send("b LIST \"\" \"\(tooLong)\"") == ["b BAD Pattern too long"])
        let long = String(repeating: "%*", count: 500) + "Z"
        #expect(driver.send("c LIST \"\" \"\(long)\"") == ["c OK LIST completed"])
        #expect(
            driver.send("d LIST \"\" \"%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*Z\"") == [
                "d OK LIST completed"
            ])
        #expect(driver.send("e LIST \"\" \"%*%*%*%*%*X\"").last == "e OK LIST completed")
        #expect(
            driver.send("f LIST \"IN\" \"%*%*B%*%*%*%*X\"") == [
                "* LIST (\\HasNoChildren) \"/\" \"INBOX\"", "f OK LIST completed",
            ])
    }

    /// Issue 12: each HEADER.FIELDS item re-parsed the header (3.3 s per item on a 24 MB
    /// message, about 280 items per line); now a FETCH parses it once per message.
    @Test func headerParsedOncePerMessagePerFetch() throws {
        let body = "From: a@x\r\nSubject: hi\r\n continued\r\nX-0: zero\r\n\r\nX-1: in the body\r\n"
        try store.deliver(Array(body.utf8), to: "user@example.org")
        try store.deliver(Array(body.utf8), to: "user@example.org")
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        let items = (0..<200).map { "BODY.PEEK[HEADER.FIELDS (X-\($0))]" }.joined(separator: " ")
        let lines = driver.send(
            "c FETCH 1:2 (\(items) BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.TEXT)")
        #expect(driver.session.headerScans == 2)
        #expect(lines.count == 3)
        #expect(
            lines[0].contains(
                "BODY[HEADER.FIELDS (X-0)] {13}\r\nX-0: zero\r\n\r\n BODY[HEADER.FIELDS (X-1)] {2}\r\n\r\n"))
        #expect(lines[0].contains("BODY[HEADER.FIELDS (SUBJECT)] {27}\r\nSubject: hi\r\n continued\r\n\r\n"))
        #expect(lines[0].hasSuffix("RFC822.TEXT {18}\r\nX-1: in the body\r\n FLAGS (\\Seen))"))
        _ = driver.send("d FETCH 1 (FLAGS RFC822.SIZE)")
        #expect(driver.session.headerScans == 2)
    }

    @Test func keywordLimits() throws {
        try store.deliver(Array(message.utf8), to: "user@example.org")
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        let long = String(repeating: "k", count: 65)
        #expect(driver.send("c STORE 1 +FLAGS.SILENT (\(long))") == ["c NO [LIMIT] A keyword is at most 64 bytes"])
        let many = (0..<65).map { "k\($0)" }.joined(separator: " ")
        #expect(
            driver.send("d STORE 1 +FLAGS.SILENT (\(many))") == ["d NO [LIMIT] A message carries at most 64 keywords"])
        #expect(
            driver.send("e STORE 1 +FLAGS (k1 \\Seen)") == ["* 1 FETCH (FLAGS (\\Seen k1))", "e OK STORE completed"])
        #expect(driver.send("f GETQUOTAROOT INBOX")[1] == "* QUOTA \"\" (STORAGE 1 102400)")
    }

    /// UIDPLUS (RFC 4315): COPYUID with the source UIDs and their copies' UIDs, in order.
    @Test func copyUIDs() throws {
        for _ in 0..<5 { try store.deliver(Array(message.utf8), to: "user@example.org") }
        var driver = loggedIn()
        #expect(driver.session.capabilities.contains("UIDPLUS"))
        _ = driver.send("b CREATE Other")
        _ = driver.send("c SELECT INBOX")
        #expect(driver.send("d UID COPY 5,1:2,4 Other") == ["d OK [COPYUID 3 1:2,4:5 1:4] COPY completed"])
        #expect(driver.send("e COPY 3 Other") == ["e OK [COPYUID 3 3 5] COPY completed"])
        #expect(driver.send("f UID COPY 9 Other") == ["f OK COPY completed"])
        #expect(
            driver.send("g MOVE 2:3 Other") == [
                "* OK [COPYUID 3 2:3 6:7] Moved", "* 3 EXPUNGE", "* 2 EXPUNGE", "g OK MOVE completed",
            ])
        #expect(SequenceSet.text([1, 2, 3, 7, 9, 10, 4]) == "1:3,7,9:10,4")
        #expect(SequenceSet.text([UInt32.max - 1, .max]) == "4294967294:4294967295")
        #expect(SequenceSet.text([]) == "")
    }

    /// UIDPLUS (RFC 4315): APPEND answers with the mailbox's UIDVALIDITY and the new UID.
    @Test func appendUID() throws {
        var driver = loggedIn()
        _ = driver.send("b SELECT INBOX")
        #expect(
            driver.send("c APPEND INBOX (\\Seen k1) \" 5-Jan-2024 10:00:00 +0100\" {5+}\r\nhello") == [
                "* 1 EXISTS", "c OK [APPENDUID 2 1] APPEND completed",
            ])
        #expect(
            driver.send("d FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])") == [
                "* 1 FETCH (FLAGS (\\Seen k1) INTERNALDATE \" 5-Jan-2024 09:00:00 +0000\" BODY[] {5}\r\nhello)",
                "d OK FETCH completed",
            ])
        _ = driver.send("e CREATE Other")
        #expect(
            driver.send("f APPEND Other {3}\r\nabc") == [
                "+ Ready for literal data", "f OK [APPENDUID 3 1] APPEND completed",
            ])
        #expect(driver.send("g APPEND Nope {1+}\r\nx") == ["g NO [TRYCREATE] No such mailbox"])
        #expect(driver.send("h APPEND INBOX \"bad date\" {1+}\r\nx") == ["h BAD Invalid date-time"])
        #expect(driver.send("i APPEND INBOX \"quoted\"") == ["i BAD Invalid date-time"])
        let small = MemoryMailStore(quotaBytes: 10)
        small.addAccount("user@example.org", password: "secret")
        var full = Driver(store: small)
        _ = full.send("a LOGIN user@example.org secret")
        #expect(full.send("b APPEND INBOX {11+}\r\nhello world") == ["b NO [OVERQUOTA] Quota exceeded"])
    }

    @Test func oversizedLiterals() {
        var driver = Driver(store: store)
        driver.framer.limits.literalSize = 10
        #expect(driver.send("a LOGIN {11}") == ["a BAD [TOOBIG] Literal too large"])
        #expect(driver.send("b NOOP") == ["b OK NOOP completed"])
        #expect(driver.send("c LOGIN {11+}\r\nhello world x").last == "* BYE Literal too large")
        #expect(driver.effects == [.close])
    }
}
