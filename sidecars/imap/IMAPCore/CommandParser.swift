/// Character classes of RFC 3501's formal syntax.
enum IMAPGrammar {
    static func isAtomChar(_ byte: UInt8) -> Bool {
        switch byte {
        case 0..<0x21, 0x7F...: false
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
            UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "]"):
            false
        default: true
        }
    }

    static func isAStringChar(_ byte: UInt8) -> Bool { isAtomChar(byte) || byte == UInt8(ascii: "]") }

    static func isTagChar(_ byte: UInt8) -> Bool { isAStringChar(byte) && byte != UInt8(ascii: "+") }

    static func isListChar(_ byte: UInt8) -> Bool {
        isAStringChar(byte) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "*")
    }
}

/// Why a command was refused; `tag` is nil when not even the tag could be read.
public struct ParseError: Error, Equatable, Sendable {
    public var tag: String?
    public var message: String

    public init(tag: String?, message: String) {
        self.tag = tag
        self.message = message
    }
}

/// Parses one framed command (see `CommandFramer`) into a `Command`.
public enum CommandParser {
    public static func parse(_ frame: [UInt8]) throws(ParseError) -> Command {
        var reader = Reader(bytes: frame)
        let tag: String
        do {
            tag = try reader.tag()
            try reader.space()
        } catch {
            throw ParseError(tag: nil, message: "Missing or invalid tag")
        }
        do throws(Reader.Failure) {
            let kind = try parseKind(&reader)
            guard reader.atEnd else { throw reader.error("Unexpected text after the command") }
            return Command(tag: tag, kind: kind)
        } catch {
            throw ParseError(tag: tag, message: error.message)
        }
    }

    private static func parseKind(_ r: inout Reader) throws(Reader.Failure) -> Command.Kind {
        var name = try r.atom().uppercased()
        var byUID = false
        if name == "UID" {
            try r.space()
            byUID = true
            name = try r.atom().uppercased()
            guard ["FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE"].contains(name) else {
                throw r.error("Unknown UID command")
            }
        }
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "IDLE": return .idle
        case "ID":
            try r.space()
            if r.takeKeyword("NIL") { return .id(nil) }
            var fields: [String?] = []
            try r.expect(UInt8(ascii: "("))
            while !r.take(UInt8(ascii: ")")) {
                if !fields.isEmpty { try r.space() }
                fields.append(try r.nstring().map { String(decoding: $0, as: UTF8.self) })
                guard fields.count <= 60 else { throw r.error("Too many ID fields") }
            }
            return .id(fields)
        case "LOGIN":
            try r.space()
            let user = try r.astringText()
            try r.space()
            let password = try r.astringText()
            return .login(user: user, password: password)
        case "COMPRESS":
            try r.space()
            return .compress(mechanism: try r.atom().uppercased())
        case "ENABLE":
            var capabilities: [String] = []
            while r.take(UInt8(ascii: " ")) { capabilities.append(try r.atom().uppercased()) }
            guard !capabilities.isEmpty else { throw r.error("ENABLE needs a capability") }
            return .enable(capabilities)
        case "SELECT", "EXAMINE":
            try r.space()
            let mailbox = try r.mailbox()
            if r.take(UInt8(ascii: " ")) { throw r.error("SELECT parameters are not supported") }
            return .select(mailbox: mailbox, readOnly: name == "EXAMINE")
        case "CREATE":
            try r.space()
            return .create(mailbox: try r.mailbox())
        case "DELETE":
            try r.space()
            return .delete(mailbox: try r.mailbox())
        case "SUBSCRIBE":
            try r.space()
            return .subscribe(mailbox: try r.mailbox())
        case "UNSUBSCRIBE":
            try r.space()
            return .unsubscribe(mailbox: try r.mailbox())
        case "LIST", "LSUB":
            try r.space()
            let reference = try r.mailbox()
            try r.space()
            let pattern = try r.listMailbox()
            return .list(reference: reference, pattern: pattern, subscribedOnly: name == "LSUB")
        case "STATUS":
            try r.space()
            let mailbox = try r.mailbox()
            try r.space()
            try r.expect(UInt8(ascii: "("))
            var items: [StatusItem] = []
            repeat {
                let word = try r.atom().uppercased()
                guard let item = StatusItem(rawValue: word) else { throw r.error("Unknown STATUS item \(word)") }
                items.append(item)
            } while r.take(UInt8(ascii: " "))
            try r.expect(UInt8(ascii: ")"))
            return .status(mailbox: mailbox, items: items)
        case "EXPUNGE":
            if byUID {
                try r.space()
                return .expunge(uids: try r.sequenceSet())
            }
            return .expunge(uids: nil)
        case "FETCH":
            try r.space()
            let set = try r.sequenceSet()
            try r.space()
            return .fetch(set, try fetchAttributes(&r), byUID: byUID)
        case "STORE":
            try r.space()
            let set = try r.sequenceSet()
            try r.space()
            var item = try r.atom().uppercased()
            var operation = StoreOperation.replace
            if item.hasPrefix("+") {
                operation = .add
                item.removeFirst()
            } else if item.hasPrefix("-") {
                operation = .remove
                item.removeFirst()
            }
            var silent = false
            if item.hasSuffix(".SILENT") {
                silent = true
                item.removeLast(7)
            }
            guard item == "FLAGS" else { throw r.error("STORE supports FLAGS only") }
            try r.space()
            return .store(set, operation, silent: silent, flags: try r.flagList(), byUID: byUID)
        case "COPY", "MOVE":
            try r.space()
            let set = try r.sequenceSet()
            try r.space()
            let mailbox = try r.mailbox()
            return name == "COPY"
                ? .copy(set, mailbox: mailbox, byUID: byUID) : .move(set, mailbox: mailbox, byUID: byUID)
        case "SEARCH":
            var keys: [SearchKey] = []
            while r.take(UInt8(ascii: " ")) { keys.append(try searchKey(&r)) }
            guard !keys.isEmpty else { throw r.error("SEARCH needs a key") }
            return .search(keys, byUID: byUID)
        case "APPEND":
            try r.space()
            let mailbox = try r.mailbox()
            try r.space()
            var flags: [String] = []
            if r.peek == UInt8(ascii: "(") {
                flags = try r.flagList()
                try r.space()
            }
            var date: Int64?
            if r.peek == UInt8(ascii: "\"") {
                guard let parsed = IMAPDate.parse(String(decoding: try r.string(), as: UTF8.self)) else {
                    throw r.error("Invalid date-time")
                }
                date = parsed
                try r.space()
            }
            guard r.peek == UInt8(ascii: "{") || r.peek == UInt8(ascii: "~") else {
                throw r.error("APPEND needs the message as a literal")
            }
            return .append(mailbox: mailbox, flags: flags, date: date, message: try r.string())
        case "GETQUOTAROOT":
            try r.space()
            return .getQuotaRoot(mailbox: try r.mailbox())
        case "GETQUOTA":
            try r.space()
            return .getQuota(root: try r.astringText())
        case "GETMETADATA":
            try r.space()
            // Options may come before (RFC 5464) or, from some clients, after the mailbox.
            try skipMetadataOptions(&r)
            let mailbox = try r.mailbox()
            try r.space()
            try skipMetadataOptions(&r)
            var entries: [String] = []
            if r.take(UInt8(ascii: "(")) {
                repeat { entries.append(try r.astringText()) } while r.take(UInt8(ascii: " "))
                try r.expect(UInt8(ascii: ")"))
            } else {
                entries.append(try r.astringText())
            }
            return .getMetadata(mailbox: mailbox, entries: entries)
        case "SETMETADATA":
            try r.space()
            let mailbox = try r.mailbox()
            try r.space()
            try r.expect(UInt8(ascii: "("))
            var entries: [MetadataEntry] = []
            repeat {
                let entry = try r.astringText()
                try r.space()
                entries.append(MetadataEntry(name: entry, value: try r.nstring()))
            } while r.take(UInt8(ascii: " "))
            try r.expect(UInt8(ascii: ")"))
            return .setMetadata(mailbox: mailbox, entries: entries)
        default:
            throw r.error("Unknown command")
        }
    }

    private static func skipMetadataOptions(_ r: inout Reader) throws(Reader.Failure) {
        guard r.peek == UInt8(ascii: "("), let next = r.peek(at: 1),
            next | 0x20 == UInt8(ascii: "m") || next | 0x20 == UInt8(ascii: "d")
        else { return }
        try r.expect(UInt8(ascii: "("))
        repeat {
            let option = try r.atom().uppercased()
            try r.space()
            switch option {
            case "MAXSIZE": _ = try r.number()
            case "DEPTH": _ = try r.atom()
            default: throw r.error("Unknown GETMETADATA option")
            }
        } while r.take(UInt8(ascii: " "))
        try r.expect(UInt8(ascii: ")"))
        try r.space()
    }

    private static func fetchAttributes(_ r: inout Reader) throws(Reader.Failure) -> [FetchAttribute] {
        if r.take(UInt8(ascii: "(")) {
            var attributes: [FetchAttribute] = []
            repeat {
                attributes.append(contentsOf: try fetchAttribute(&r, macrosAllowed: false))
            } while r.take(
                UInt8(ascii: " "))
            try r.expect(UInt8(ascii: ")"))
            return attributes
        }
        return try fetchAttribute(&r, macrosAllowed: true)
    }

    private static func fetchAttribute(_ r: inout Reader, macrosAllowed: Bool) throws(Reader.Failure)
        -> [FetchAttribute]
    {
        let name = r.takeWhile { $0.isASCIILetterOrDigit || $0 == UInt8(ascii: ".") }.uppercased()
        switch name {
        case "UID": return [.uid]
        case "FLAGS": return [.flags]
        case "RFC822.SIZE": return [.rfc822Size]
        case "INTERNALDATE": return [.internalDate]
        case "RFC822": return [.rfc822]
        case "RFC822.HEADER": return [.rfc822Header]
        case "RFC822.TEXT": return [.rfc822Text]
        case "FAST" where macrosAllowed: return [.flags, .internalDate, .rfc822Size]
        case "BODY", "BODY.PEEK":
            guard r.take(UInt8(ascii: "[")) else { throw r.error("BODYSTRUCTURE is not supported") }
            let section = try section(&r)
            try r.expect(UInt8(ascii: "]"))
            var partial: FetchAttribute.Partial?
            if r.take(UInt8(ascii: "<")) {
                let offset = try r.number()
                try r.expect(UInt8(ascii: "."))
                let count = try r.number()
                guard count > 0 else { throw r.error("Empty partial range") }
                try r.expect(UInt8(ascii: ">"))
                partial = .init(offset: Int(offset), count: Int(count))
            }
            return [.body(section: section, peek: name == "BODY.PEEK", partial: partial)]
        default:
            throw r.error("Unsupported fetch attribute \(name)")
        }
    }

    private static func section(_ r: inout Reader) throws(Reader.Failure) -> FetchAttribute.Section {
        if r.peek == UInt8(ascii: "]") { return .whole }
        let name = r.takeWhile { $0.isASCIILetterOrDigit || $0 == UInt8(ascii: ".") }.uppercased()
        switch name {
        case "HEADER": return .header
        case "TEXT": return .text
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try r.space()
            try r.expect(UInt8(ascii: "("))
            var fields: [String] = []
            repeat { fields.append(try r.astringText()) } while r.take(UInt8(ascii: " "))
            try r.expect(UInt8(ascii: ")"))
            return name == "HEADER.FIELDS" ? .headerFields(fields) : .headerFieldsNot(fields)
        default: throw r.error("Unsupported body section \(name)")
        }
    }

    private static func searchKey(_ r: inout Reader) throws(Reader.Failure) -> SearchKey {
        if let first = r.peek, first == UInt8(ascii: "*") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) {
            return .sequence(try r.sequenceSet())
        }
        let word = try r.atom().uppercased()
        switch word {
        case "ALL": return .all
        case "SEEN": return .seen
        case "UNSEEN": return .unseen
        case "DELETED": return .deleted
        case "UNDELETED": return .undeleted
        case "FLAGGED": return .flagged
        case "UNFLAGGED": return .unflagged
        case "ANSWERED": return .answered
        case "UNANSWERED": return .unanswered
        case "UID":
            try r.space()
            return .uid(try r.sequenceSet())
        default: throw r.error("Unsupported search key \(word)")
        }
    }
}

extension UInt8 {
    var isASCIILetterOrDigit: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

/// A cursor over one command frame.
struct Reader {
    struct Failure: Error {
        var message: String
    }

    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index == bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    func peek(at offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    func error(_ message: String) -> Failure { Failure(message: message) }

    mutating func take(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        guard take(byte) else { throw error("Expected '\(Character(Unicode.Scalar(byte)))'") }
    }

    mutating func space() throws(Failure) {
        guard take(UInt8(ascii: " ")) else { throw error("Expected a space") }
    }

    mutating func takeWhile(_ predicate: (UInt8) -> Bool) -> String {
        let start = index
        while let byte = peek, predicate(byte) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// A keyword followed by a delimiter (not a longer atom).
    mutating func takeKeyword(_ keyword: String) -> Bool {
        let utf8 = Array(keyword.utf8)
        guard index + utf8.count <= bytes.count else { return false }
        for (offset, byte) in utf8.enumerated() where bytes[index + offset] | 0x20 != byte | 0x20 { return false }
        if index + utf8.count < bytes.count, IMAPGrammar.isAtomChar(bytes[index + utf8.count]) { return false }
        index += utf8.count
        return true
    }

    mutating func tag() throws(Failure) -> String {
        let tag = takeWhile(IMAPGrammar.isTagChar)
        guard !tag.isEmpty else { throw error("Missing tag") }
        return tag
    }

    mutating func atom() throws(Failure) -> String {
        let atom = takeWhile(IMAPGrammar.isAtomChar)
        guard !atom.isEmpty else { throw error("Expected an atom") }
        return atom
    }

    mutating func number() throws(Failure) -> UInt32 {
        let digits = takeWhile { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        guard let value = UInt32(digits) else { throw error("Expected a number") }
        return value
    }

    mutating func nzNumber() throws(Failure) -> UInt32 {
        let value = try number()
        guard value > 0 else { throw error("Expected a non-zero number") }
        return value
    }

    /// A quoted string or a literal (`{N}` / `{N+}`, CRLF, N bytes).
    mutating func string() throws(Failure) -> [UInt8] {
        if take(UInt8(ascii: "\"")) {
            var value: [UInt8] = []
            while true {
                guard let byte = peek else { throw error("Unterminated quoted string") }
                index += 1
                switch byte {
                case UInt8(ascii: "\""): return value
                case UInt8(ascii: "\\"):
                    guard let escaped = peek, escaped == UInt8(ascii: "\"") || escaped == UInt8(ascii: "\\") else {
                        throw error("Invalid escape in quoted string")
                    }
                    index += 1
                    value.append(escaped)
                case UInt8(ascii: "\r"), UInt8(ascii: "\n"), 0: throw error("Invalid character in quoted string")
                default: value.append(byte)
                }
            }
        }
        if take(UInt8(ascii: "{")) || take(UInt8(ascii: "~")) && take(UInt8(ascii: "{")) {
            let size = Int(try number())
            _ = take(UInt8(ascii: "+"))
            try expect(UInt8(ascii: "}"))
            _ = take(UInt8(ascii: "\r"))
            try expect(UInt8(ascii: "\n"))
            guard index + size <= bytes.count else { throw error("Truncated literal") }
            defer { index += size }
            return Array(bytes[index..<index + size])
        }
        throw error("Expected a string")
    }

    mutating func astring() throws(Failure) -> [UInt8] {
        if let byte = peek, IMAPGrammar.isAStringChar(byte) {
            return Array(takeWhile(IMAPGrammar.isAStringChar).utf8)
        }
        return try string()
    }

    mutating func astringText() throws(Failure) -> String {
        let bytes = try astring()
        guard let text = String(validating: bytes, as: UTF8.self) else { throw error("Not UTF-8") }
        return text
    }

    mutating func nstring() throws(Failure) -> [UInt8]? {
        if takeKeyword("NIL") { return nil }
        return try string()
    }

    /// A mailbox name; INBOX in any case is INBOX.
    mutating func mailbox() throws(Failure) -> String {
        let name = try astringText()
        return name.uppercased() == "INBOX" ? "INBOX" : name
    }

    mutating func listMailbox() throws(Failure) -> String {
        if let byte = peek, IMAPGrammar.isListChar(byte) { return takeWhile(IMAPGrammar.isListChar) }
        return try astringText()
    }

    mutating func flagList() throws(Failure) -> [String] {
        var flags: [String] = []
        let parenthesised = take(UInt8(ascii: "("))
        if parenthesised && take(UInt8(ascii: ")")) { return [] }
        repeat {
            let backslash = take(UInt8(ascii: "\\"))
            let name = try atom()
            flags.append(backslash ? Flag.canonical("\\" + name) : name)
        } while take(UInt8(ascii: " "))
        if parenthesised { try expect(UInt8(ascii: ")")) }
        return flags
    }

    mutating func sequenceSet() throws(Failure) -> SequenceSet {
        var ranges: [SequenceSet.Range] = []
        repeat {
            let from = try bound()
            let to = take(UInt8(ascii: ":")) ? try bound() : from
            ranges.append(.init(from, to))
        } while take(UInt8(ascii: ","))
        return SequenceSet(ranges)
    }

    private mutating func bound() throws(Failure) -> SequenceSet.Bound {
        if take(UInt8(ascii: "*")) { return .last }
        return .number(try nzNumber())
    }
}
