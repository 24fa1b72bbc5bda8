/// One function per command (as swift-nio-imap gives each grammar rule its own). Each returns the
/// command's responses with its tagged OK last, or throws `CommandError` / `MailStoreError` for a
/// tagged NO or BAD (`receive` decides which from the error's type, never from the text).
extension IMAPSession {
    static func ok(_ tag: String, _ text: String, _ untagged: [ResponseLine] = []) -> SessionOutcome {
        SessionOutcome(responses: untagged + [.tagged(tag, .ok, text)])
    }

    // MARK: Any state

    func capability(_ tag: String) -> SessionOutcome {
        Self.ok(tag, "CAPABILITY completed", [.untagged("CAPABILITY " + capabilities.joined(separator: " "))])
    }

    /// NOOP and CHECK: what changed in the selected mailbox.
    mutating func noop(_ tag: String, verb: String) throws -> SessionOutcome {
        Self.ok(tag, "\(verb) completed", try refresh(allowExpunge: true))
    }

    mutating func logout(_ tag: String) -> SessionOutcome {
        phase = .loggedOut
        return SessionOutcome(
            responses: [.untagged("BYE Logging out"), .tagged(tag, .ok, "LOGOUT completed")], effect: .close)
    }

    func id(_ tag: String) -> SessionOutcome {
        Self.ok(tag, "ID completed", [.untagged("ID (\"name\" \(IMAPString.quoted(configuration.serverName)))")])
    }

    // MARK: Not authenticated

    func startTLS(_ tag: String) throws -> SessionOutcome {
        guard account == nil, configuration.startTLSAvailable, !configuration.tlsActive else {
            throw CommandError.bad("STARTTLS not available")
        }
        return SessionOutcome(responses: [.tagged(tag, .ok, "Begin TLS negotiation now")], effect: .startTLS)
    }

    mutating func login(_ tag: String, user: String, password: String) throws -> SessionOutcome {
        guard account == nil else { throw CommandError.bad("Already authenticated") }
        guard !configuration.loginRequiresTLS || configuration.tlsActive else {
            throw CommandError.no("[PRIVACYREQUIRED] Use STARTTLS first")
        }
        guard !loginBlocked else { throw CommandError.no("[UNAVAILABLE] Too many failed logins, try later") }
        let mayCreate = mayCreateAccount ?? { true }
        guard let account = try store.login(user: user, password: password, mayCreate: mayCreate) else {
            failedLogins += 1
            let failure = ResponseLine.tagged(tag, .no, "[AUTHENTICATIONFAILED] Authentication failed")
            if failedLogins >= configuration.maxFailedLogins {
                phase = .loggedOut
                return SessionOutcome(
                    responses: [failure, .untagged("BYE Too many failed logins")],
                    effect: .loginFailed(checked: true, closing: true))
            }
            return SessionOutcome(responses: [failure], effect: .loginFailed(checked: true, closing: false))
        }
        if let admit, !admit(account) { throw CommandError.no("[LIMIT] Too many sessions for this account") }
        self.account = account
        phase = .authenticated
        return SessionOutcome(
            responses: [.tagged(tag, .ok, "[CAPABILITY \(capabilities.joined(separator: " "))] Logged in")],
            effect: .authenticated(account))
    }

    // MARK: Authenticated

    func enable(_ tag: String) throws -> SessionOutcome {
        try requireAuthenticated()
        return Self.ok(tag, "ENABLE completed", [.untagged("ENABLED")])
    }

    func compress(_ tag: String, mechanism: String) throws -> SessionOutcome {
        try requireAuthenticated()
        guard mechanism == "DEFLATE", configuration.compressAvailable else {
            throw CommandError.bad("Unsupported compression mechanism")
        }
        guard !compressed else { throw CommandError.no("[COMPRESSIONACTIVE] Already compressing") }
        return SessionOutcome(responses: [.tagged(tag, .ok, "DEFLATE active")], effect: .startCompression)
    }

    /// SELECT and EXAMINE.
    mutating func select(_ tag: String, _ name: String, readOnly: Bool) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        selection = nil
        phase = .authenticated
        guard let mailbox = try store.mailbox(account: account, name: name) else {
            throw CommandError.no("[NONEXISTENT] No such mailbox")
        }
        let uids = try store.uids(mailbox: mailbox.id)
        let unseen = try firstUnseen(mailbox: mailbox.id, uids: uids)
        selection = Selection(mailbox: mailbox, readOnly: readOnly, uids: uids)
        mailboxChanged = false
        phase = .selected
        var lines: [ResponseLine] = [
            .untagged("FLAGS (\(Flag.system.joined(separator: " ")))"),
            .untagged(
                "OK [PERMANENTFLAGS (\(readOnly ? "" : Flag.system.joined(separator: " ") + " \\*"))] Flags permitted"),
            .untagged("\(uids.count) EXISTS"),
            .untagged("0 RECENT"),
        ]
        if let unseen { lines.append(.untagged("OK [UNSEEN \(unseen)] First unseen")) }
        lines.append(.untagged("OK [UIDVALIDITY \(mailbox.uidValidity)] UIDs valid"))
        lines.append(.untagged("OK [UIDNEXT \(mailbox.uidNext)] Predicted next UID"))
        return Self.ok(
            tag, "[\(readOnly ? "READ-ONLY" : "READ-WRITE")] \(readOnly ? "EXAMINE" : "SELECT") completed", lines)
    }

    func create(_ tag: String, _ name: String) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        guard name != "INBOX" else { throw MailStoreError.mailboxExists }
        guard !name.isEmpty, name.count <= 200, !name.contains(where: { "%*\r\n\0".contains($0) }),
            !name.hasPrefix("/"), !name.hasSuffix("/")
        else { throw CommandError.no("[CANNOT] Invalid mailbox name") }
        guard try store.mailboxes(account: account).count < configuration.maxMailboxes else {
            throw MailStoreError.limitReached("Too many mailboxes")
        }
        try store.createMailbox(account: account, name: name)
        return Self.ok(tag, "CREATE completed")
    }

    func delete(_ tag: String, _ name: String) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        guard name != "INBOX" else { throw CommandError.no("[CANNOT] INBOX cannot be deleted") }
        if selection?.mailbox.name == name { throw CommandError.no("[INUSE] Mailbox is selected") }
        try store.deleteMailbox(account: account, name: name)
        return Self.ok(tag, "DELETE completed")
    }

    /// SUBSCRIBE and UNSUBSCRIBE: every mailbox counts as subscribed.
    func subscribe(_ tag: String) throws -> SessionOutcome {
        try requireAuthenticated()
        return Self.ok(tag, "Completed")
    }

    /// LIST and LSUB.
    func list(_ tag: String, reference: String, pattern: String, subscribedOnly: Bool) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        let verb = subscribedOnly ? "LSUB" : "LIST"
        if pattern.isEmpty { return Self.ok(tag, "\(verb) completed", [.untagged("\(verb) (\\Noselect) \"/\" \"\"")]) }
        guard reference.utf8.count + pattern.utf8.count <= MailboxPattern.maxLength else {
            throw CommandError.bad("Pattern too long")
        }
        let matcher = MailboxPattern(reference + pattern)
        let lines = try store.mailboxes(account: account)
            .filter { matcher.matches($0.name) }
            .map { ResponseLine([.text("* \(verb) (\\HasNoChildren) \"/\" "), IMAPString.part($0.name)]) }
        return Self.ok(tag, "\(verb) completed", lines)
    }

    func status(_ tag: String, _ name: String, items: [StatusItem]) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        guard let mailbox = try store.mailbox(account: account, name: name) else { throw MailStoreError.noSuchMailbox }
        let uids = try store.uids(mailbox: mailbox.id)
        var values: [String] = []
        for item in items {
            let value: Int
            switch item {
            case .messages: value = uids.count
            case .recent: value = 0
            case .uidNext: value = Int(mailbox.uidNext)
            case .uidValidity: value = Int(mailbox.uidValidity)
            case .unseen:
                value = try store.messages(mailbox: mailbox.id, uids: uids).count { !$0.flags.contains(Flag.seen) }
            }
            values.append("\(item.rawValue) \(value)")
        }
        let line = ResponseLine([
            .text("* STATUS "), IMAPString.part(name), .text(" (\(values.joined(separator: " ")))"),
        ])
        return Self.ok(tag, "STATUS completed", [line])
    }

    mutating func append(_ tag: String, _ name: String, flags requested: [String], date: Int64?, message: [UInt8])
        throws -> SessionOutcome
    {
        let account = try requireAuthenticated()
        guard let mailbox = try store.mailbox(account: account, name: name) else {
            throw CommandError.no("[TRYCREATE] No such mailbox")
        }
        let flags = Array(Set(requested.filter { $0 != Flag.recent }))
        try Self.checkKeywordLength(flags)
        let uid = try store.append(mailbox: mailbox.id, message: message, flags: flags, date: date)
        var lines: [ResponseLine] = []
        if selection?.mailbox.id == mailbox.id {
            mailboxChanged = true
            lines = try refresh(allowExpunge: false)
        }
        // UIDPLUS (RFC 4315).
        return Self.ok(tag, "[APPENDUID \(mailbox.uidValidity) \(uid)] APPEND completed", lines)
    }

    mutating func idle(_ tag: String) throws -> SessionOutcome {
        try requireAuthenticated()
        // The continuation first, then what changed meanwhile (RFC 2177's example): clients
        // such as Delta Chat's (async-imap) take anything before `+` as part of starting IDLE
        // and then wait for news after it, so an EXISTS sent first would go unheard.
        let news = try refresh(allowExpunge: true)
        phase = .idling
        idleTag = tag
        return SessionOutcome(responses: [.continuation("idling")] + news)
    }

    // MARK: Selected

    /// CLOSE (expunging `\Deleted` unless read-only) and UNSELECT.
    mutating func close(_ tag: String, expunging: Bool) throws -> SessionOutcome {
        let selected = try requireSelected()
        if expunging && !selected.readOnly {
            let deleted = try store.messages(mailbox: selected.mailbox.id, uids: selected.uids)
                .filter { $0.flags.contains(Flag.deleted) }.map(\.uid)
            if !deleted.isEmpty { _ = try store.expunge(mailbox: selected.mailbox.id, uids: deleted) }
        }
        selection = nil
        phase = .authenticated
        return Self.ok(tag, "\(expunging ? "CLOSE" : "UNSELECT") completed")
    }

    /// EXPUNGE, or UID EXPUNGE with `uids`.
    mutating func expunge(_ tag: String, uids uidSet: SequenceSet?) throws -> SessionOutcome {
        let selected = try requireSelected()
        guard !selected.readOnly else { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
        var candidates = selected.uids
        if let uidSet { candidates = candidates.filter { uidSet.contains($0, last: selected.uids.last) } }
        let deleted = try store.messages(mailbox: selected.mailbox.id, uids: candidates)
            .filter { $0.flags.contains(Flag.deleted) }.map(\.uid)
        let removed = try store.expunge(mailbox: selected.mailbox.id, uids: deleted)
        var lines = forget(Set(removed))
        lines += try refresh(allowExpunge: true)
        return Self.ok(tag, "EXPUNGE completed", lines)
    }

    mutating func fetch(_ tag: String, _ set: SequenceSet, _ attributes: [FetchAttribute], byUID: Bool) throws
        -> SessionOutcome
    {
        var lines = try refresh(allowExpunge: byUID)
        lines += try fetchLines(set, attributes, byUID: byUID)
        return Self.ok(tag, "FETCH completed", lines)
    }

    mutating func store(
        _ tag: String, _ set: SequenceSet, _ operation: StoreOperation, silent: Bool, flags: [String], byUID: Bool
    ) throws -> SessionOutcome {
        var lines = try refresh(allowExpunge: byUID)
        let selected = try requireSelected()
        guard !selected.readOnly else { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
        try Self.checkKeywordLength(flags)
        let targets = try resolve(set, byUID: byUID)
        let updated = try store.storeFlags(
            mailbox: selected.mailbox.id, uids: targets.map(\.uid), operation: operation, flags: flags)
        if !silent {
            let sequence = Dictionary(uniqueKeysWithValues: targets.map { ($0.uid, $0.sequence) })
            for message in updated {
                guard let number = sequence[message.uid] else { continue }
                let uid = byUID ? " UID \(message.uid)" : ""
                lines.append(.untagged("\(number) FETCH (FLAGS (\(message.flags.joined(separator: " ")))\(uid))"))
            }
        }
        return Self.ok(tag, "STORE completed", lines)
    }

    /// COPY and MOVE, with UIDPLUS's COPYUID (RFC 4315): in COPY's tagged OK; for MOVE in an
    /// untagged OK before the expunges (RFC 6851 §4.3).
    mutating func copy(_ tag: String, _ set: SequenceSet, to name: String, byUID: Bool, move: Bool) throws
        -> SessionOutcome
    {
        var lines = try refresh(allowExpunge: byUID)
        let selected = try requireSelected()
        let account = try requireAuthenticated()
        if move && selected.readOnly { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
        guard let target = try store.mailbox(account: account, name: name) else {
            throw CommandError.no("[TRYCREATE] No such mailbox")
        }
        let uids = try resolve(set, byUID: byUID).map(\.uid)
        let copies = try store.copy(mailbox: selected.mailbox.id, uids: uids, to: target.id)
        let code =
            copies.isEmpty
            ? ""
            : "[COPYUID \(target.uidValidity) \(SequenceSet.text(copies.map(\.source))) "
                + "\(SequenceSet.text(copies.map(\.copy)))] "
        guard move else { return Self.ok(tag, "\(code)COPY completed", lines) }
        if !code.isEmpty { lines.append(.untagged("OK \(code)Moved")) }
        let removed = try store.expunge(mailbox: selected.mailbox.id, uids: uids)
        lines += forget(Set(removed))
        return Self.ok(tag, "MOVE completed", lines)
    }

    mutating func search(_ tag: String, _ keys: [SearchKey], byUID: Bool) throws -> SessionOutcome {
        var lines = try refresh(allowExpunge: byUID)
        let selected = try requireSelected()
        let messages = try store.messages(mailbox: selected.mailbox.id, uids: selected.uids)
        let found = MessageSearch(keys, uids: selected.uids).run(messages).map {
            byUID ? "\($0.uid)" : "\($0.sequence)"
        }
        lines.append(.untagged((["SEARCH"] + found).joined(separator: " ")))
        return Self.ok(tag, "SEARCH completed", lines)
    }

    // MARK: QUOTA and METADATA

    func getQuotaRoot(_ tag: String, _ name: String) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        guard try store.mailbox(account: account, name: name) != nil else { throw MailStoreError.noSuchMailbox }
        let rootLine = ResponseLine([.text("* QUOTAROOT "), IMAPString.part(name), .text(" \"\"")])
        return Self.ok(tag, "GETQUOTAROOT completed", [rootLine, try quotaLine(account)])
    }

    func getQuota(_ tag: String, root: String) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        guard root.isEmpty else { throw CommandError.no("[NONEXISTENT] No such quota root") }
        return Self.ok(tag, "GETQUOTA completed", [try quotaLine(account)])
    }

    func getMetadata(_ tag: String, mailbox: String, entries: [String]) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        try requireMetadataMailbox(mailbox, account: account)
        var parts: [ResponseLine.Part] = []
        for entry in entries {
            let name = entry.lowercased()
            var value: [UInt8]?
            if mailbox.isEmpty, let text = discoveryMetadata[name] ?? configuration.serverMetadata[name] {
                value = Array(text.utf8)
            } else if name.hasPrefix("/private/") {
                value = try store.metadata(account: account, mailbox: mailbox, entry: name)
                if let bytes = value, String(validating: bytes, as: UTF8.self) == nil { value = nil }
            }
            guard let value else { continue }
            parts.append(.text(parts.isEmpty ? "" : " "))
            parts.append(.text(Self.astringText(entry) + " "))
            parts.append(IMAPString.unescapedPart(value))
        }
        guard !parts.isEmpty else { return Self.ok(tag, "GETMETADATA completed") }
        let line = ResponseLine(
            [.text("* METADATA "), .text(IMAPString.quoted(mailbox)), .text(" (")] + parts + [.text(")")])
        return Self.ok(tag, "GETMETADATA completed", [line])
    }

    func setMetadata(_ tag: String, mailbox: String, entries: [MetadataEntry]) throws -> SessionOutcome {
        let account = try requireAuthenticated()
        try requireMetadataMailbox(mailbox, account: account)
        for entry in entries {
            let name = entry.name.lowercased()
            guard name.hasPrefix("/private/"), name.count > 9, name.utf8.count <= 256 else {
                throw CommandError.no("[METADATA NOPRIVATE] Only private entries can be set")
            }
            if let value = entry.value, value.count > configuration.maxMetadataSize {
                throw CommandError.no("[METADATA MAXSIZE \(configuration.maxMetadataSize)] Value too large")
            }
            if name == PushToken.entry, mailbox.uppercased() == PushToken.mailbox {
                // Device tokens are kept apart, one per device, and never read back (secrets).
                // NIL removes nothing: a token goes when unused for long, or when the proxy says so.
                if let token = entry.value { try addPushToken(token, account: account) }
                continue
            }
            try store.setMetadata(account: account, mailbox: mailbox, entry: name, value: entry.value)
        }
        return Self.ok(tag, "SETMETADATA completed")
    }

    private func addPushToken(_ token: [UInt8], account: Account) throws {
        switch PushToken.problem(token, maxBytes: configuration.maxPushTokenSize) {
        case nil: try store.addPushToken(account: account, token: token)
        case .tooLong(let max): throw CommandError.no("[METADATA MAXSIZE \(max)] Device token too long")
        case .empty: throw CommandError.no("Empty device token")
        case .invalidByte: throw CommandError.no("Device token must be printable ASCII without spaces")
        }
    }

    // MARK: Helpers of these commands

    static func checkKeywordLength(_ flags: [String]) throws {
        guard flags.allSatisfy({ $0.utf8.count <= Keywords.maxLength }) else {
            throw CommandError.no("[LIMIT] A keyword is at most \(Keywords.maxLength) bytes")
        }
    }

    private func requireMetadataMailbox(_ mailbox: String, account: Account) throws {
        if !mailbox.isEmpty, try store.mailbox(account: account, name: mailbox) == nil {
            throw MailStoreError.noSuchMailbox
        }
    }

    private func firstUnseen(mailbox: Int64, uids: [UInt32]) throws -> Int? {
        let messages = try store.messages(mailbox: mailbox, uids: uids)
        guard let first = messages.first(where: { !$0.flags.contains(Flag.seen) }) else { return nil }
        return uids.firstIndex(of: first.uid).map { $0 + 1 }
    }

    private func quotaLine(_ account: Account) throws -> ResponseLine {
        let quota = try store.quota(account: account)
        let used = (quota.usedBytes + 1023) / 1024
        return .untagged("QUOTA \"\" (STORAGE \(used) \(quota.limitBytes / 1024))")
    }
}
