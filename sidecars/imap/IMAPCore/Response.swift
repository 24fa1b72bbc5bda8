/// One response line, possibly with literals inside; the encoder adds the final CRLF.
public struct ResponseLine: Equatable, Sendable {
    public enum Part: Equatable, Sendable {
        case text(String)
        case literal([UInt8])
    }

    public var parts: [Part]

    public init(_ parts: [Part]) {
        self.parts = parts
    }

    public init(_ text: String) {
        self.parts = [.text(text)]
    }

    public static func untagged(_ text: String) -> ResponseLine { ResponseLine("* " + text) }

    public static func tagged(_ tag: String, _ status: Status, _ text: String) -> ResponseLine {
        ResponseLine("\(tag) \(status.rawValue) \(text)")
    }

    public static func continuation(_ text: String) -> ResponseLine { ResponseLine("+ " + text) }

    public enum Status: String, Sendable {
        case ok = "OK"
        case no = "NO"
        case bad = "BAD"
    }

    /// The wire bytes, CRLF included.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    public func encode(into out: inout [UInt8]) {
        for part in parts {
            switch part {
            case .text(let text): out.append(contentsOf: text.utf8)
            case .literal(let bytes):
                out.append(contentsOf: "{\(bytes.count)}\r\n".utf8)
                out.append(contentsOf: bytes)
            }
        }
        out.append(contentsOf: [13, 10])
    }

    /// The text of a line without literals (for tests and logs).
    public var text: String {
        parts.map {
            switch $0 {
            case .text(let text): text
            case .literal(let bytes): "{\(bytes.count)}\r\n" + String(decoding: bytes, as: UTF8.self)
            }
        }.joined()
    }
}

/// Builds response parts, quoting or switching to a literal as the value needs.
public enum IMAPString {
    /// A quoted string when that carries the value exactly (7-bit, no CR/LF/NUL), else a literal.
    public static func part(_ value: [UInt8]) -> ResponseLine.Part {
        guard value.count <= 1024, value.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return .literal(value) }
        return .text(quoted(value))
    }

    public static func part(_ value: String) -> ResponseLine.Part { part(Array(value.utf8)) }

    /// A quoted string for values known to be quotable (callers check).
    public static func quoted(_ value: some Sequence<UInt8>) -> String {
        var out = "\""
        for byte in value {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append("\\") }
            out.unicodeScalars.append(Unicode.Scalar(byte))
        }
        return out + "\""
    }

    public static func quoted(_ value: String) -> String { quoted(value.utf8) }

    /// A value for a client that does not unescape quoted strings (Delta Chat's METADATA parser):
    /// quoted only when no escaping is needed, else a literal.
    public static func unescapedPart(_ value: [UInt8]) -> ResponseLine.Part {
        if value.contains(UInt8(ascii: "\"")) || value.contains(UInt8(ascii: "\\")) { return .literal(value) }
        return part(value)
    }
}

/// System flags in their canonical spelling.
public enum Flag {
    public static let seen = "\\Seen"
    public static let answered = "\\Answered"
    public static let flagged = "\\Flagged"
    public static let deleted = "\\Deleted"
    public static let draft = "\\Draft"
    public static let recent = "\\Recent"
    public static let system = [answered, flagged, deleted, seen, draft]

    /// Whether `flag` (canonical) is a system flag rather than a keyword.
    public static func isSystem(_ flag: String) -> Bool { flag == recent || system.contains(flag) }

    /// `\seen` is `\Seen`; other names stay as written.
    public static func canonical(_ flag: String) -> String {
        let lower = flag.lowercased()
        return (system + [recent]).first { $0.lowercased() == lower } ?? flag
    }
}

/// Bounds on keywords (flags other than the system ones), which clients may set freely: how many a
/// message may carry, how long each may be, and what they cost in the account's quota.
public enum Keywords {
    public static let maxPerMessage = 64
    /// Bytes per keyword (Dovecot's `mail_max_keyword_length` is 50).
    public static let maxLength = 64

    /// The bytes a message's flags count in the quota: each keyword and a separator.
    public static func quotaBytes(_ flags: some Sequence<String>) -> Int {
        flags.reduce(0) { Flag.isSystem($1) ? $0 : $0 + $1.utf8.count + 1 }
    }

    /// Throws when a message would carry more keywords than allowed.
    public static func check(_ flags: some Collection<String>) throws(MailStoreError) {
        guard flags.count(where: { !Flag.isSystem($0) }) <= maxPerMessage else {
            throw .limitReached("A message carries at most \(maxPerMessage) keywords")
        }
    }
}
