extension IMAPSession {
    /// The FETCH lines for `set`; marks messages `\Seen` when a non-PEEK body item asks for it.
    mutating func fetchLines(_ set: SequenceSet, _ requested: [FetchAttribute], byUID: Bool) throws
        -> [ResponseLine]
    {
        let selected = try requireSelected()
        var attributes = requested
        if byUID && !attributes.contains(.uid) { attributes.insert(.uid, at: 0) }
        let targets = try resolve(set, byUID: byUID)
        guard !targets.isEmpty else { return [] }
        var infos = Dictionary(
            uniqueKeysWithValues: try store.messages(mailbox: selected.mailbox.id, uids: targets.map(\.uid))
                .map { ($0.uid, $0) })
        let marksSeen =
            !selected.readOnly
            && attributes.contains {
                switch $0 {
                case .body(_, let peek, _): !peek
                case .rfc822, .rfc822Text: true
                default: false
                }
            }
        if marksSeen {
            let unseen = targets.map(\.uid).filter { infos[$0].map { !$0.flags.contains(Flag.seen) } ?? false }
            if !unseen.isEmpty {
                for message in try store.storeFlags(
                    mailbox: selected.mailbox.id, uids: unseen, operation: .add, flags: [Flag.seen])
                {
                    infos[message.uid] = message
                }
                if !attributes.contains(.flags) { attributes.append(.flags) }
            }
        }
        let needsBody = attributes.contains {
            switch $0 {
            case .uid, .flags, .rfc822Size, .internalDate: false
            default: true
            }
        }
        var lines: [ResponseLine] = []
        for target in targets {
            guard let info = infos[target.uid] else { continue }
            let body = needsBody ? try store.body(mailbox: selected.mailbox.id, uid: target.uid) ?? [] : []
            // Found on first use, then shared by every section of this message.
            var parsedHeader: MessageHeader?
            func header() -> MessageHeader {
                if let parsedHeader { return parsedHeader }
                let found = MessageHeader(body)
                headerScans += 1
                parsedHeader = found
                return found
            }
            var parts: [ResponseLine.Part] = [.text("* \(target.sequence) FETCH (")]
            for (index, attribute) in attributes.enumerated() {
                let separator = index == 0 ? "" : " "
                switch attribute {
                case .uid: parts.append(.text("\(separator)UID \(info.uid)"))
                case .flags: parts.append(.text("\(separator)FLAGS (\(info.flags.joined(separator: " ")))"))
                case .rfc822Size: parts.append(.text("\(separator)RFC822.SIZE \(info.size)"))
                case .internalDate:
                    parts.append(.text("\(separator)INTERNALDATE \"\(IMAPDate.format(info.internalDate))\""))
                case .rfc822: parts += [.text("\(separator)RFC822 "), .literal(body)]
                case .rfc822Header: parts += [.text("\(separator)RFC822.HEADER "), .literal(header().header(body))]
                case .rfc822Text: parts += [.text("\(separator)RFC822.TEXT "), .literal(header().text(body))]
                case .body(let section, _, let partial):
                    var data: [UInt8]
                    let sectionText: String
                    switch section {
                    case .whole:
                        data = body
                        sectionText = ""
                    case .header:
                        data = header().header(body)
                        sectionText = "HEADER"
                    case .text:
                        data = header().text(body)
                        sectionText = "TEXT"
                    case .headerFields(let names):
                        data = header().fields(of: body, names: names)
                        sectionText = "HEADER.FIELDS (\(names.map(Self.astringText).joined(separator: " ")))"
                    case .headerFieldsNot(let names):
                        data = header().fields(of: body, names: names, excluding: true)
                        sectionText = "HEADER.FIELDS.NOT (\(names.map(Self.astringText).joined(separator: " ")))"
                    }
                    var origin = ""
                    if let partial {
                        let start = min(partial.offset, data.count)
                        data = Array(data[start..<min(data.count, start + partial.count)])
                        origin = "<\(partial.offset)>"
                    }
                    parts += [.text("\(separator)BODY[\(sectionText)]\(origin) "), .literal(data)]
                }
            }
            parts.append(.text(")"))
            lines.append(ResponseLine(Self.merged(parts)))
        }
        return lines
    }

    static func astringText(_ value: String) -> String {
        let bytes = Array(value.utf8)
        return !bytes.isEmpty && bytes.allSatisfy(IMAPGrammar.isAStringChar) ? value : IMAPString.quoted(value)
    }

    /// Adjacent text parts joined (fewer, larger writes).
    private static func merged(_ parts: [ResponseLine.Part]) -> [ResponseLine.Part] {
        var out: [ResponseLine.Part] = []
        for part in parts {
            if case .text(let next) = part, case .text(let previous)? = out.last {
                out[out.count - 1] = .text(previous + next)
            } else {
                out.append(part)
            }
        }
        return out
    }
}
