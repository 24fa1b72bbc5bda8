import ChatmailTestSupport
import Testing

@testable import IMAPCore

@Suite struct FramerTests {
    @Test func linesAndLineEnds() {
        #expect(
            frames(Array("a NOOP\r\nb NOOP\nc".utf8)) == [
                .command(Array("a NOOP".utf8)), .command(Array("b NOOP".utf8)),
            ])
    }

    @Test func synchronizingLiteralAsksForContinuation() {
        let input = Array("a LOGIN {4}\r\nuser {2}\r\npw\r\n".utf8)
        #expect(
            frames(input) == [
                .continuationNeeded, .continuationNeeded, .command(Array("a LOGIN {4}\r\nuser {2}\r\npw".utf8)),
            ])
    }

    @Test func nonSynchronizingLiteralDoesNot() {
        let input = Array("a SETMETADATA \"INBOX\" (/private/devicetoken {5+}\r\nab\r\nc)\r\n".utf8)
        #expect(frames(input) == [.command(Array(input.dropLast(2)))])
    }

    @Test func byteAtATimeEqualsWhole() {
        let input = Array("a LOGIN {4}\r\nuser \"pw\"\r\nb UID FETCH 1:* (UID)\r\nc IDLE\r\nDONE\r\n".utf8)
        #expect(frames(input, chunk: 1) == frames(input))
        #expect(frames(input, chunk: 7) == frames(input))
    }

    @Test func lineTooLongStopsFraming() {
        let limits = IMAPLimits(lineLength: 20, literalSize: 10, commandSize: 100)
        let events = frames(
            Array("a NOOP\r\nb \(String(repeating: "x", count: 30))\r\nc NOOP\r\n".utf8), limits: limits)
        #expect(events == [.command(Array("a NOOP".utf8)), .lineTooLong])
    }

    @Test func literalTooLarge() {
        let limits = IMAPLimits(lineLength: 100, literalSize: 10, commandSize: 1000)
        #expect(
            frames(Array("t1 LOGIN {11}\r\nt2 NOOP\r\n".utf8), limits: limits) == [
                .literalTooLarge(tag: "t1", synchronizing: true), .command(Array("t2 NOOP".utf8)),
            ])
        #expect(
            frames(Array("t1 LOGIN {11+}\r\nhello world\r\n".utf8), limits: limits) == [
                .literalTooLarge(tag: "t1", synchronizing: false)
            ])
    }

    @Test func literalLengthIsBounded() {
        // An absurd length is not parsed into an overflowing integer.
        #expect(
            frames(Array("a LOGIN {99999999999999999999}\r\n".utf8)) == [
                .command(Array("a LOGIN {99999999999999999999}".utf8))
            ])
        #expect(throws: ParseError.self) { try CommandParser.parse(Array("a LOGIN {99999999999999999999}".utf8)) }
    }
}

@Suite struct ParserTests {
    func parse(_ text: String) throws -> Command { try CommandParser.parse(Array(text.utf8)) }

    @Test func deltaChatCommands() throws {
        #expect(
            try parse("A0001 LOGIN \"u@example.org\" \"p\\\"w\\\\\"")
                == Command(tag: "A0001", kind: .login(user: "u@example.org", password: "p\"w\\")))
        #expect(
            try parse("A0002 ID (\"name\" \"Delta Chat\")") == Command(tag: "A0002", kind: .id(["name", "Delta Chat"])))
        #expect(try parse("A0003 COMPRESS DEFLATE").kind == .compress(mechanism: "DEFLATE"))
        #expect(try parse("A0004 SELECT \"inbox\"").kind == .select(mailbox: "INBOX", readOnly: false))
        let prefetch = try parse(
            "A0005 UID FETCH 5:504 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE X-MICROSOFT-ORIGINAL-MESSAGE-ID FROM CONTENT-TYPE SECURE-JOIN CHAT-VERSION CHAT-IS-POST-MESSAGE AUTOCRYPT-SETUP-MESSAGE)])"
        )
        #expect(
            prefetch.kind
                == .fetch(
                    SequenceSet([.init(.number(5), .number(504))]),
                    [
                        .uid, .rfc822Size,
                        .body(
                            section: .headerFields([
                                "MESSAGE-ID", "DATE", "X-MICROSOFT-ORIGINAL-MESSAGE-ID", "FROM", "CONTENT-TYPE",
                                "SECURE-JOIN", "CHAT-VERSION", "CHAT-IS-POST-MESSAGE", "AUTOCRYPT-SETUP-MESSAGE",
                            ]), peek: true, partial: nil),
                    ], byUID: true))
        #expect(
            try parse("A0006 UID FETCH 5:9,12 (FLAGS BODY.PEEK[])").kind
                == .fetch(
                    SequenceSet([.init(.number(5), .number(9)), .init(.number(12), .number(12))]),
                    [.flags, .body(section: .whole, peek: true, partial: nil)], byUID: true))
        #expect(
            try parse("A0007 UID STORE 5:7 +FLAGS (\\Seen)").kind
                == .store(
                    SequenceSet([.init(.number(5), .number(7))]), .add, silent: false, flags: ["\\Seen"], byUID: true))
        #expect(
            try parse(
                "A0008 GETMETADATA \"\" (/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay /shared/vendor/deltachat/turn /shared/vendor/deltachat/maxsmtprecipients /shared/vendor/deltachat/appversions)"
            ).kind
                == .getMetadata(
                    mailbox: "",
                    entries: [
                        "/shared/comment", "/shared/admin", "/shared/vendor/deltachat/irohrelay",
                        "/shared/vendor/deltachat/turn", "/shared/vendor/deltachat/maxsmtprecipients",
                        "/shared/vendor/deltachat/appversions",
                    ]))
        #expect(
            try parse("A0009 SETMETADATA \"INBOX\" (/private/devicetoken {9+}\r\nopenpgp:x)").kind
                == .setMetadata(
                    mailbox: "INBOX", entries: [.init(name: "/private/devicetoken", value: Array("openpgp:x".utf8))]))
        #expect(try parse("A0010 GETQUOTAROOT \"INBOX\"").kind == .getQuotaRoot(mailbox: "INBOX"))
        #expect(
            try parse("A0011 UID MOVE 3 \"DeltaChat\"").kind
                == .move(SequenceSet([.init(.number(3), .number(3))]), mailbox: "DeltaChat", byUID: true))
        #expect(try parse("A0012 LIST \"\" \"*\"").kind == .list(reference: "", pattern: "*", subscribedOnly: false))
        #expect(try parse("A0013 STATUS \"INBOX\" (UIDNEXT)").kind == .status(mailbox: "INBOX", items: [.uidNext]))
        #expect(
            try parse("A0014 GETMETADATA (MAXSIZE 1024) \"\" /shared/comment").kind
                == .getMetadata(mailbox: "", entries: ["/shared/comment"]))
        #expect(
            try parse("a fetch 1:* fast").kind
                == .fetch(SequenceSet([.init(.number(1), .last)]), [.flags, .internalDate, .rfc822Size], byUID: false))
        #expect(
            try parse("a FETCH 1 BODY[]<0.100>").kind
                == .fetch(
                    SequenceSet([.init(.number(1), .number(1))]),
                    [.body(section: .whole, peek: false, partial: .init(offset: 0, count: 100))], byUID: false))
    }

    @Test(arguments: [
        "", "NOOP", "a", "a ", "a NOPE", "a LOGIN user", "a LOGIN \"unterminated", "a LOGIN \"x\\y\" z",
        "a FETCH 0 (UID)", "a FETCH 1 (BODYSTRUCTURE)", "a UID FROB 1", "a STORE 1 FLAGZ (\\Seen)",
        "a SELECT INBOX (CONDSTORE)",
        "a NOOP extra", "+ NOOP", "a LOGIN {5}\r\nab", "a FETCH 1 BODY[1]",
    ])
    func refusals(_ text: String) {
        #expect(throws: ParseError.self) { try parse(text) }
    }

    @Test func tagIsKeptForBadCommands() {
        #expect(throws: ParseError(tag: "x1", message: "Unknown command")) { try parse("x1 FROBNICATE") }
    }

    static func randomCommand(_ rng: inout SeededGenerator) -> Command {
        func word(_ alphabet: String, _ length: ClosedRange<Int>) -> String {
            String((0..<Int.random(in: length, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        let printable = "abcXYZ019 .-_@\"\\/%*(){}+~é"
        let text = { (rng: inout SeededGenerator) -> String in
            String((0..<Int.random(in: 0...12, using: &rng)).map { _ in printable.randomElement(using: &rng)! })
        }
        func set() -> SequenceSet {
            SequenceSet(
                (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                    let a: SequenceSet.Bound =
                        Bool.random(using: &rng) ? .last : .number(UInt32.random(in: 1...1000, using: &rng))
                    let b: SequenceSet.Bound =
                        Bool.random(using: &rng) ? a : .number(UInt32.random(in: 1...1000, using: &rng))
                    return .init(a, b)
                })
        }
        let mailbox = { (rng: inout SeededGenerator) -> String in
            let name = text(&rng)
            return name.uppercased() == "INBOX" || name.isEmpty ? "INBOX" : name
        }
        let tag = word("ABCabc0123456789.", 1...6)
        let kinds: [Command.Kind] = [
            .capability, .noop, .logout, .idle, .close, .check, .unselect,
            .login(user: text(&rng), password: text(&rng)),
            .id(Bool.random(using: &rng) ? nil : [text(&rng), nil, text(&rng), text(&rng)]),
            .select(mailbox: mailbox(&rng), readOnly: Bool.random(using: &rng)),
            .create(mailbox: mailbox(&rng)),
            .list(reference: text(&rng), pattern: text(&rng), subscribedOnly: Bool.random(using: &rng)),
            .status(mailbox: mailbox(&rng), items: [.uidNext, .messages]),
            .expunge(uids: Bool.random(using: &rng) ? nil : set()),
            .fetch(
                set(),
                [
                    .uid, .flags, .body(section: .headerFields(["MESSAGE-ID", "DATE"]), peek: true, partial: nil),
                    .rfc822Size,
                ],
                byUID: Bool.random(using: &rng)),
            .fetch(set(), [.body(section: .text, peek: false, partial: .init(offset: 3, count: 9))], byUID: false),
            .store(
                set(), [.add, .remove, .replace].randomElement(using: &rng)!, silent: Bool.random(using: &rng),
                flags: ["\\Seen", "\\Deleted", "custom"], byUID: Bool.random(using: &rng)),
            .copy(set(), mailbox: mailbox(&rng), byUID: Bool.random(using: &rng)),
            .move(set(), mailbox: mailbox(&rng), byUID: Bool.random(using: &rng)),
            .search([.unseen, .uid(set())], byUID: Bool.random(using: &rng)),
            .getQuotaRoot(mailbox: mailbox(&rng)),
            .append(
                mailbox: mailbox(&rng), flags: Bool.random(using: &rng) ? [] : ["\\Seen", "k"],
                date: Bool.random(using: &rng) ? nil : Int64.random(in: 0...4_000_000_000, using: &rng),
                message: Array(text(&rng).utf8) + [13, 10]),
            .getMetadata(mailbox: "", entries: ["/shared/comment", "/shared/vendor/deltachat/turn"]),
            .setMetadata(
                mailbox: "INBOX",
                entries: [
                    .init(name: "/private/devicetoken", value: Array(text(&rng).utf8)),
                    .init(name: "/private/x", value: nil),
                ]),
        ]
        return Command(tag: tag, kind: kinds.randomElement(using: &rng)!)
    }

    /// Commands encoded as clients would (quoted, with either kind of literal), framed in
    /// chunks of random size, parse back to themselves.
    @Test func roundTrip() throws {
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<2000 {
            let command = Self.randomCommand(&rng)
            let style = LiteralStyle.allCases.randomElement(using: &rng)!
            let events = frames(command.encoded(style), chunk: Int.random(in: 1...40, using: &rng))
            let commands = events.compactMap { event -> [UInt8]? in
                if case .command(let frame) = event { return frame }
                return nil
            }
            #expect(commands.count == 1, "\(command)")
            guard let frame = commands.first else { continue }
            let parsed = try #require(try? CommandParser.parse(frame), "\(String(decoding: frame, as: UTF8.self))")
            #expect(parsed == command, "\(String(decoding: frame, as: UTF8.self))")
        }
    }

    /// Random and mutated input never crashes the framer, the parser or the session, and every
    /// complete command gets exactly one tagged or final answer.
    @Test func fuzz() {
        var rng = SeededGenerator(seed: 7)
        let store = MemoryMailStore()
        store.addAccount("a@x", password: "pw")
        for _ in 0..<300 { _ = try? store.deliver(Array("Subject: x\r\n\r\nhi".utf8), to: "a@x") }
        for round in 0..<1500 {
            var input = round % 3 == 0 ? [] : Array("t LOGIN a@x pw\r\nt SELECT INBOX\r\n".utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                var bytes = Self.randomCommand(&rng).encoded(LiteralStyle.allCases.randomElement(using: &rng)!)
                for _ in 0..<Int.random(in: 0...4, using: &rng) where !bytes.isEmpty {
                    let index = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0...2, using: &rng) {
                    case 0: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.remove(at: index)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                    }
                }
                input += bytes
            }
            if round % 5 == 0 { input = (0..<200).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            var framer = CommandFramer(limits: IMAPLimits(lineLength: 256, literalSize: 64, commandSize: 1024))
            var session = IMAPSession(configuration: SessionConfiguration(), store: store)
            framer.feed(input)
            loop: while let event = framer.next() {
                let outcome: SessionOutcome
                switch event {
                case .continuationNeeded: continue
                case .command(let frame): outcome = session.receive(frame)
                default: outcome = session.framingFailed(event)
                }
                #expect(!outcome.responses.isEmpty || session.phase == .idling || outcome.effect == .close)
                if outcome.effect == .close { break loop }
            }
        }
    }
}

@Suite struct MessagePartsTests {
    let message = Array(
        "From: a@x\r\nSubject: long\r\n folded\r\nMessage-ID: <1@x>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n"
            .utf8)

    @Test func header() {
        #expect(MessageParts.headerEnd(message) == message.count - 6)
        #expect(MessageParts.text(message) == Array("body\r\n".utf8))
    }

    @Test func headerFields() {
        #expect(
            String(decoding: MessageParts.headerFields(message, names: ["subject", "MESSAGE-ID"]), as: UTF8.self)
                == "Subject: long\r\n folded\r\nMessage-ID: <1@x>\r\n\r\n")
        #expect(
            String(
                decoding: MessageParts.headerFields(message, names: ["subject", "message-id"], excluding: true),
                as: UTF8.self)
                == "From: a@x\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n")
        #expect(MessageParts.headerFields(message, names: ["x-none"]) == [13, 10])
        #expect(MessageParts.headerFields([], names: ["from"]) == [13, 10])
    }

    /// The one-pass `MessageHeader` answers exactly as the line-by-line scan it replaced.
    @Test func oneParseAgreesWithTheLineScan() {
        func reference(_ message: [UInt8], _ names: [String], excluding: Bool) -> [UInt8] {
            let wanted = Set(names.map { $0.lowercased() })
            var out: [UInt8] = []
            var including = false
            var index = 0
            while index < message.count {
                let lf = message[index...].firstIndex(of: 10)
                var line = message[index..<(lf ?? message.count)]
                if line.last == 13 { line = line.dropLast() }
                if line.isEmpty { break }
                if line.first != 32 && line.first != 9 {
                    let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
                    let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
                    including = wanted.contains(name.trimmingSuffixSpaces().lowercased()) != excluding
                }
                if including { out += line + [13, 10] }
                index = (lf ?? message.count) + 1
            }
            return out + [13, 10]
        }
        var rng = SystemRandomNumberGenerator()
        let pieces = ["A: 1", "a :2", " c", "\tc", "B", "", "b: x", "\r"].map { Array($0.utf8) }
        for _ in 0..<5000 {
            var message: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                message += pieces.randomElement(using: &rng)!
                message += Bool.random(using: &rng) ? [13, 10] : [10]
            }
            if Bool.random(using: &rng) { message += pieces.randomElement(using: &rng)! }
            let header = MessageHeader(message)
            for excluding in [false, true] {
                #expect(
                    header.fields(of: message, names: ["a", "B"], excluding: excluding)
                        == reference(message, ["a", "B"], excluding: excluding), "\(message)")
            }
            #expect(header.header(message) + header.text(message) == message)
        }
    }

    @Test func internalDateParsed() {
        #expect(IMAPDate.parse(" 1-Jan-1970 00:00:00 +0000") == 0)
        #expect(IMAPDate.parse("23-Sep-2025 20:07:48 +0200") == 1_758_650_868)
        #expect(IMAPDate.parse("29-feb-2000 00:00:00 -0130") == Int64(951_787_800))
        for seconds: Int64 in [0, 86399, 951_782_400, 1_758_650_868, -86400, 4_102_444_800] {
            #expect(IMAPDate.parse(IMAPDate.format(seconds)) == seconds)
        }
        for bad in [
            "", "1-Jan-1970", "1-Foo-1970 00:00:00 +0000", "1-Jan-1970 24:00:00 +0000", "1-Jan-1970 00:00:00 0000",
            "1-Jan-70 00:00:00 +0000", "1-Jan-1970 0:00:00 +0000", "1-Jan-1970 00:00:00 +00x0",
        ] {
            #expect(IMAPDate.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func internalDate() {
        #expect(IMAPDate.format(0) == " 1-Jan-1970 00:00:00 +0000")
        #expect(IMAPDate.format(1_758_650_868) == "23-Sep-2025 18:07:48 +0000")
        #expect(IMAPDate.format(951_782_400) == "29-Feb-2000 00:00:00 +0000")
    }
}

@Suite struct SequenceSetTests {
    func set(_ text: String) throws -> SequenceSet {
        guard case .fetch(let set, _, _) = try CommandParser.parse(Array("a FETCH \(text) (UID)".utf8)).kind else {
            throw ParseError(tag: nil, message: "not a fetch")
        }
        return set
    }

    @Test func coalescing() throws {
        #expect(try set("5:3,1,2,9:*,7").coalesced(last: 12) == [1...5, 7...7, 9...12])
        #expect(try set("1:*").coalesced(last: nil) == [])
        #expect(try set("4294967295,1:4294967294").coalesced(last: 3) == [1...4_294_967_295])
        #expect(try set("1:4294967295,5:10,4294967295").coalesced(last: 3) == [1...4_294_967_295])
        // Repeating a huge range costs no more than one.
        let repeated = try set(Array(repeating: "1:4000000000", count: 800).joined(separator: ","))
        #expect(repeated.coalesced(last: 10) == [1...4_000_000_000])
    }

    @Test func membershipMatchesTheNaiveDefinition() throws {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<300 {
            let ranges = (0..<Int.random(in: 1...5, using: &rng)).map { _ in
                SequenceSet.Range(
                    .number(UInt32.random(in: 1...50, using: &rng)),
                    Bool.random(using: &rng) ? .last : .number(UInt32.random(in: 1...50, using: &rng)))
            }
            let set = SequenceSet(ranges)
            for value in UInt32(0)...60 {
                let naive = set.resolved(last: 40).contains { $0.contains(value) }
                #expect(set.contains(value, last: 40) == naive)
            }
        }
    }
}
