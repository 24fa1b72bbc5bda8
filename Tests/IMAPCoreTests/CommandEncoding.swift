import ChatmailTestSupport

@testable import IMAPCore

/// A client-side encoder for commands, for round-trip tests: how a client would send `command`.
enum LiteralStyle: CaseIterable {
    case quoted, synchronizing, nonSynchronizing
}

extension Command {
    func encoded(_ style: LiteralStyle) -> [UInt8] {
        func string(_ bytes: [UInt8]) -> [UInt8] {
            let quotable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            switch style {
            case .quoted where quotable: return Array(IMAPString.quoted(bytes).utf8)
            case .nonSynchronizing: return Array("{\(bytes.count)+}\r\n".utf8) + bytes
            default: return Array("{\(bytes.count)}\r\n".utf8) + bytes
            }
        }
        func string(_ text: String) -> [UInt8] { string(Array(text.utf8)) }
        func set(_ set: SequenceSet) -> String {
            set.ranges.map { range in
                func bound(_ b: SequenceSet.Bound) -> String {
                    switch b {
                    case .number(let n): "\(n)"
                    case .last: "*"
                    }
                }
                return range.from == range.to ? bound(range.from) : "\(bound(range.from)):\(bound(range.to))"
            }.joined(separator: ",")
        }
        func uid(_ byUID: Bool) -> String { byUID ? "UID " : "" }
        var out = Array("\(tag) ".utf8)
        func text(_ t: String) { out += Array(t.utf8) }
        switch kind {
        case .capability: text("CAPABILITY")
        case .noop: text("NOOP")
        case .logout: text("LOGOUT")
        case .startTLS: text("STARTTLS")
        case .check: text("CHECK")
        case .close: text("CLOSE")
        case .unselect: text("UNSELECT")
        case .idle: text("IDLE")
        case .id(nil): text("ID NIL")
        case .id(let fields?):
            text("ID (")
            for (index, field) in fields.enumerated() {
                if index > 0 { text(" ") }
                if let field { out += string(field) } else { text("NIL") }
            }
            text(")")
        case .login(let user, let password):
            text("LOGIN ")
            out += string(user)
            text(" ")
            out += string(password)
        case .compress(let mechanism): text("COMPRESS \(mechanism)")
        case .enable(let capabilities): text("ENABLE " + capabilities.joined(separator: " "))
        case .select(let mailbox, let readOnly):
            text(readOnly ? "EXAMINE " : "SELECT ")
            out += string(mailbox)
        case .create(let mailbox):
            text("CREATE ")
            out += string(mailbox)
        case .delete(let mailbox):
            text("DELETE ")
            out += string(mailbox)
        case .subscribe(let mailbox):
            text("SUBSCRIBE ")
            out += string(mailbox)
        case .unsubscribe(let mailbox):
            text("UNSUBSCRIBE ")
            out += string(mailbox)
        case .list(let reference, let pattern, let subscribedOnly):
            text(subscribedOnly ? "LSUB " : "LIST ")
            out += string(reference)
            text(" ")
            out += string(pattern)
        case .status(let mailbox, let items):
            text("STATUS ")
            out += string(mailbox)
            text(" (" + items.map(\.rawValue).joined(separator: " ") + ")")
        case .expunge(nil): text("EXPUNGE")
        case .expunge(let uids?): text("UID EXPUNGE " + set(uids))
        case .fetch(let s, let attributes, let byUID):
            text("\(uid(byUID))FETCH \(set(s)) (" + attributes.map(Self.attributeText).joined(separator: " ") + ")")
        case .store(let s, let operation, let silent, let flags, let byUID):
            let sign = operation == .add ? "+" : operation == .remove ? "-" : ""
            text(
                "\(uid(byUID))STORE \(set(s)) \(sign)FLAGS\(silent ? ".SILENT" : "") (\(flags.joined(separator: " ")))")
        case .copy(let s, let mailbox, let byUID), .move(let s, let mailbox, let byUID):
            if case .copy = kind { text("\(uid(byUID))COPY \(set(s)) ") } else { text("\(uid(byUID))MOVE \(set(s)) ") }
            out += string(mailbox)
        case .search(let keys, let byUID):
            text("\(uid(byUID))SEARCH")
            for key in keys {
                switch key {
                case .uid(let s): text(" UID \(set(s))")
                case .sequence(let s): text(" \(set(s))")
                default: text(" \(key)".uppercased())
                }
            }
        case .getQuotaRoot(let mailbox):
            text("GETQUOTAROOT ")
            out += string(mailbox)
        case .getQuota(let root):
            text("GETQUOTA ")
            out += string(root)
        case .getMetadata(let mailbox, let entries):
            text("GETMETADATA ")
            out += string(mailbox)
            text(" (")
            for (index, entry) in entries.enumerated() {
                if index > 0 { text(" ") }
                out += string(entry)
            }
            text(")")
        case .append(let mailbox, let flags, let date, let message):
            text("APPEND ")
            out += string(mailbox)
            if !flags.isEmpty { text(" (\(flags.joined(separator: " ")))") }
            if let date { text(" \"\(IMAPDate.format(date))\"") }
            text(style == .nonSynchronizing ? " {\(message.count)+}\r\n" : " {\(message.count)}\r\n")
            out += message
        case .setMetadata(let mailbox, let entries):
            text("SETMETADATA ")
            out += string(mailbox)
            text(" (")
            for (index, entry) in entries.enumerated() {
                if index > 0 { text(" ") }
                out += string(entry.name)
                text(" ")
                if let value = entry.value { out += string(value) } else { text("NIL") }
            }
            text(")")
        }
        return out + [13, 10]
    }

    static func attributeText(_ attribute: FetchAttribute) -> String {
        switch attribute {
        case .uid: return "UID"
        case .flags: return "FLAGS"
        case .rfc822Size: return "RFC822.SIZE"
        case .internalDate: return "INTERNALDATE"
        case .rfc822: return "RFC822"
        case .rfc822Header: return "RFC822.HEADER"
        case .rfc822Text: return "RFC822.TEXT"
        case .body(let section, let peek, let partial):
            var sectionText: String
            switch section {
            case .whole: sectionText = ""
            case .header: sectionText = "HEADER"
            case .text: sectionText = "TEXT"
            case .headerFields(let names): sectionText = "HEADER.FIELDS (\(names.joined(separator: " ")))"
            case .headerFieldsNot(let names): sectionText = "HEADER.FIELDS.NOT (\(names.joined(separator: " ")))"
            }
            let partialText = partial.map { "<\($0.offset).\($0.count)>" } ?? ""
            return "\(peek ? "BODY.PEEK" : "BODY")[\(sectionText)]\(partialText)"
        }
    }
}

/// Runs `input` through a framer and returns the frames (answering continuations as a server).
func frames(_ input: [UInt8], chunk: Int = .max, limits: IMAPLimits = IMAPLimits()) -> [CommandFramer.Event] {
    var framer = CommandFramer(limits: limits)
    var events: [CommandFramer.Event] = []
    var index = 0
    while index < input.count {
        let end = min(input.count, index + chunk)
        framer.feed(input[index..<end])
        index = end
        while let event = framer.next() { events.append(event) }
    }
    return events
}
