/// What a session serves and allows; fixed for its lifetime except where noted.
public struct SessionConfiguration: Sendable {
    public var greeting = "chatmail IMAP ready"
    /// STARTTLS is offered (plain port with a certificate available).
    public var startTLSAvailable = false
    /// The connection is already encrypted (the TLS port).
    public var tlsActive = false
    public var compressAvailable = true
    /// Refuse LOGIN before TLS (advertised as LOGINDISABLED).
    public var loginRequiresTLS = false
    /// Server METADATA entries from the configuration, by lowercased entry name
    /// (`/shared/comment`, `/shared/admin`, `/shared/vendor/deltachat/maxsmtprecipients`).
    public var serverMetadata: [String: String] = [:]
    public var maxMetadataSize = 8192
    public var maxMailboxes = 64
    /// Consecutive BAD commands and failed logins before the connection is closed.
    public var maxBadCommands = 10
    public var maxFailedLogins = 3
    public var serverName = "chatmail-swift"

    public init() {}
}

/// Something the I/O layer must do after sending the responses of a step.
public enum SessionEffect: Equatable, Sendable {
    /// Start TLS now: nothing buffered from the clear-text phase may be used.
    case startTLS
    /// Deflate both directions from the next byte on.
    case startCompression
    /// Close the connection.
    case close
    /// The session authenticated: fetch discovery for it.
    case authenticated(Account)
    /// A LOGIN failed (for the per-source limit).
    case loginFailed
}

public struct SessionOutcome: Equatable, Sendable {
    public var responses: [ResponseLine]
    public var effect: SessionEffect?

    public init(responses: [ResponseLine], effect: SessionEffect? = nil) {
        self.responses = responses
        self.effect = effect
    }
}

/// The IMAP session state machine: frames in, responses and effects out. It holds no sockets,
/// clocks or logs; storage is reached through `MailStore`.
public struct IMAPSession: Sendable {
    public enum Phase: Equatable, Sendable {
        case notAuthenticated, authenticated, selected, idling, loggedOut
    }

    struct Selection: Sendable {
        var mailbox: MailboxInfo
        var readOnly: Bool
        /// UIDs by sequence number (index 0 is message 1), as last told to the client.
        var uids: [UInt32]
    }

    public private(set) var phase: Phase = .notAuthenticated
    public private(set) var account: Account?
    public var configuration: SessionConfiguration
    /// TURN and iroh entries from discovery, by lowercased entry name.
    public var discoveryMetadata: [String: String] = [:]
    /// Set by the I/O layer while this client's source address has too many failed logins.
    public var loginBlocked = false
    /// Asked before a login succeeds (the per-account session limit); false refuses it.
    public var admit: (@Sendable (Account) -> Bool)?
    /// Asked before a login creates its account (the per-source creation limit); false refuses it.
    public var mayCreateAccount: (@Sendable () -> Bool)?
    private let store: any MailStore
    private var selection: Selection?
    private var idleTag: String?
    private var mailboxChanged = false
    private var compressed = false
    private var badCommands = 0
    private var failedLogins = 0
    /// Messages whose header FETCH has parsed (a test hook: once per message per FETCH).
    var headerScans = 0

    public init(configuration: SessionConfiguration, store: any MailStore) {
        self.configuration = configuration
        self.store = store
    }

    public var selectedMailboxID: Int64? { selection?.mailbox.id }

    public var greeting: ResponseLine {
        .untagged("OK [CAPABILITY \(capabilities.joined(separator: " "))] \(configuration.greeting)")
    }

    public var capabilities: [String] {
        var list = ["IMAP4rev1", "LITERAL+", "ID", "IDLE"]
        if account == nil {
            if configuration.startTLSAvailable && !configuration.tlsActive { list.append("STARTTLS") }
            if configuration.loginRequiresTLS && !configuration.tlsActive { list.append("LOGINDISABLED") }
        } else {
            list += ["MOVE", "UIDPLUS", "UNSELECT", "QUOTA", "METADATA", "XCHATMAIL"]
            if configuration.compressAvailable && !compressed { list.append("COMPRESS=DEFLATE") }
        }
        return list
    }

    public static let continuationRequest = ResponseLine.continuation("Ready for literal data")

    // MARK: Events from the I/O layer

    public mutating func tlsStarted() {
        configuration.tlsActive = true
    }

    public mutating func compressionStarted() {
        compressed = true
    }

    /// The framer gave up on the input.
    public mutating func framingFailed(_ event: CommandFramer.Event) -> SessionOutcome {
        switch event {
        case .literalTooLarge(let tag, let synchronizing):
            let line = ResponseLine.tagged(tag, .bad, "[TOOBIG] Literal too large")
            if synchronizing { return countBad(SessionOutcome(responses: [line])) }
            return SessionOutcome(responses: [line, .untagged("BYE Literal too large")], effect: .close)
        default:
            return SessionOutcome(
                responses: [.untagged("BAD Line too long"), .untagged("BYE Line too long")], effect: .close)
        }
    }

    /// Another session or a delivery changed the selected mailbox. While idling the client
    /// hears about it at once; otherwise with the next command.
    public mutating func selectedMailboxChanged() -> [ResponseLine] {
        mailboxChanged = true
        guard phase == .idling else { return [] }
        return (try? refresh(allowExpunge: true)) ?? []
    }

    /// A line to keep an idling client's connection alive.
    public func keepalive() -> [ResponseLine] {
        phase == .idling ? [.untagged("OK Still here")] : []
    }

    /// One complete command from the framer.
    public mutating func receive(_ frame: [UInt8]) -> SessionOutcome {
        if phase == .loggedOut { return SessionOutcome(responses: [], effect: .close) }
        if phase == .idling, let tag = idleTag {
            idleTag = nil
            phase = selection == nil ? .authenticated : .selected
            if String(decoding: frame, as: UTF8.self).uppercased() == "DONE" {
                return SessionOutcome(responses: [.tagged(tag, .ok, "IDLE terminated")])
            }
            return countBad(SessionOutcome(responses: [.tagged(tag, .bad, "Expected DONE")]))
        }
        let command: Command
        do {
            command = try CommandParser.parse(frame)
        } catch {
            return countBad(SessionOutcome(responses: [.tagged(error.tag ?? "*", .bad, error.message)]))
        }
        let outcome: SessionOutcome
        do {
            outcome = try execute(command)
        } catch let error as MailStoreError {
            outcome = SessionOutcome(responses: [.tagged(command.tag, .no, Self.describe(error))])
        } catch let error as CommandError {
            outcome = SessionOutcome(responses: [.tagged(command.tag, error.status, error.message)])
        } catch {
            outcome = SessionOutcome(responses: [.tagged(command.tag, .no, "[SERVERBUG] Internal error")])
        }
        if outcome.responses.last?.text.hasPrefix("\(command.tag) BAD") == true { return countBad(outcome) }
        badCommands = 0
        return outcome
    }

    // MARK: Commands

    struct CommandError: Error {
        var status: ResponseLine.Status
        var message: String

        static func bad(_ message: String) -> CommandError { CommandError(status: .bad, message: message) }
        static func no(_ message: String) -> CommandError { CommandError(status: .no, message: message) }
    }

    private static func describe(_ error: MailStoreError) -> String {
        switch error {
        case .quotaExceeded: "[OVERQUOTA] Quota exceeded"
        case .mailboxExists: "[ALREADYEXISTS] Mailbox exists"
        case .noSuchMailbox: "[NONEXISTENT] No such mailbox"
        case .limitReached(let what): "[LIMIT] \(what)"
        case .creationLimited: "[UNAVAILABLE] Too many new accounts from your address, try again later"
        case .metadataTooMany: "[METADATA TOOMANY] Too many METADATA entries"
        }
    }

    private mutating func countBad(_ outcome: SessionOutcome) -> SessionOutcome {
        badCommands += 1
        guard badCommands >= configuration.maxBadCommands else { return outcome }
        phase = .loggedOut
        return SessionOutcome(
            responses: outcome.responses + [.untagged("BYE Too many invalid commands")], effect: .close)
    }

    private mutating func execute(_ command: Command) throws -> SessionOutcome {
        let tag = command.tag
        func ok(_ text: String, _ untagged: [ResponseLine] = []) -> SessionOutcome {
            SessionOutcome(responses: untagged + [.tagged(tag, .ok, text)])
        }
        switch command.kind {
        case .capability:
            return ok("CAPABILITY completed", [.untagged("CAPABILITY " + capabilities.joined(separator: " "))])
        case .noop, .check:
            return ok("\(command.kind == .noop ? "NOOP" : "CHECK") completed", try refresh(allowExpunge: true))
        case .logout:
            phase = .loggedOut
            return SessionOutcome(
                responses: [.untagged("BYE Logging out"), .tagged(tag, .ok, "LOGOUT completed")], effect: .close)
        case .id:
            return ok(
                "ID completed", [.untagged("ID (\"name\" \(IMAPString.quoted(configuration.serverName)))")])
        case .startTLS:
            guard account == nil, configuration.startTLSAvailable, !configuration.tlsActive else {
                throw CommandError.bad("STARTTLS not available")
            }
            return SessionOutcome(responses: [.tagged(tag, .ok, "Begin TLS negotiation now")], effect: .startTLS)
        case .login(let user, let password):
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
                        responses: [failure, .untagged("BYE Too many failed logins")], effect: .close)
                }
                return SessionOutcome(responses: [failure], effect: .loginFailed)
            }
            if let admit, !admit(account) { throw CommandError.no("[LIMIT] Too many sessions for this account") }
            self.account = account
            phase = .authenticated
            return SessionOutcome(
                responses: [.tagged(tag, .ok, "[CAPABILITY \(capabilities.joined(separator: " "))] Logged in")],
                effect: .authenticated(account))
        case .enable:
            try requireAuthenticated()
            return ok("ENABLE completed", [.untagged("ENABLED")])
        case .compress(let mechanism):
            try requireAuthenticated()
            guard mechanism == "DEFLATE", configuration.compressAvailable else {
                throw CommandError.bad("Unsupported compression mechanism")
            }
            guard !compressed else { throw CommandError.no("[COMPRESSIONACTIVE] Already compressing") }
            return SessionOutcome(responses: [.tagged(tag, .ok, "DEFLATE active")], effect: .startCompression)
        case .select(let name, let readOnly):
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
                    "OK [PERMANENTFLAGS (\(readOnly ? "" : Flag.system.joined(separator: " ") + " \\*"))] Flags permitted"
                ),
                .untagged("\(uids.count) EXISTS"),
                .untagged("0 RECENT"),
            ]
            if let unseen { lines.append(.untagged("OK [UNSEEN \(unseen)] First unseen")) }
            lines.append(.untagged("OK [UIDVALIDITY \(mailbox.uidValidity)] UIDs valid"))
            lines.append(.untagged("OK [UIDNEXT \(mailbox.uidNext)] Predicted next UID"))
            return ok("[\(readOnly ? "READ-ONLY" : "READ-WRITE")] \(readOnly ? "EXAMINE" : "SELECT") completed", lines)
        case .create(let name):
            let account = try requireAuthenticated()
            guard name != "INBOX" else { throw MailStoreError.mailboxExists }
            guard !name.isEmpty, name.count <= 200, !name.contains(where: { "%*\r\n\0".contains($0) }),
                !name.hasPrefix("/"), !name.hasSuffix("/")
            else { throw CommandError.no("[CANNOT] Invalid mailbox name") }
            guard try store.mailboxes(account: account).count < configuration.maxMailboxes else {
                throw MailStoreError.limitReached("Too many mailboxes")
            }
            try store.createMailbox(account: account, name: name)
            return ok("CREATE completed")
        case .delete(let name):
            let account = try requireAuthenticated()
            guard name != "INBOX" else { throw CommandError.no("[CANNOT] INBOX cannot be deleted") }
            if selection?.mailbox.name == name { throw CommandError.no("[INUSE] Mailbox is selected") }
            try store.deleteMailbox(account: account, name: name)
            return ok("DELETE completed")
        case .subscribe, .unsubscribe:
            try requireAuthenticated()
            return ok("Completed")
        case .list(let reference, let pattern, let subscribedOnly):
            let account = try requireAuthenticated()
            let verb = subscribedOnly ? "LSUB" : "LIST"
            if pattern.isEmpty { return ok("\(verb) completed", [.untagged("\(verb) (\\Noselect) \"/\" \"\"")]) }
            guard reference.utf8.count + pattern.utf8.count <= MailboxPattern.maxLength else {
                throw CommandError.bad("Pattern too long")
            }
            let matcher = MailboxPattern(reference + pattern)
            let lines = try store.mailboxes(account: account)
                .filter { matcher.matches($0.name) }
                .map { ResponseLine([.text("* \(verb) (\\HasNoChildren) \"/\" "), IMAPString.part($0.name)]) }
            return ok("\(verb) completed", lines)
        case .status(let name, let items):
            let account = try requireAuthenticated()
            guard let mailbox = try store.mailbox(account: account, name: name) else {
                throw MailStoreError.noSuchMailbox
            }
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
            return ok("STATUS completed", [line])
        case .close, .unselect:
            let selected = try requireSelected()
            if command.kind == .close && !selected.readOnly {
                let deleted = try store.messages(mailbox: selected.mailbox.id, uids: selected.uids)
                    .filter { $0.flags.contains(Flag.deleted) }.map(\.uid)
                if !deleted.isEmpty { _ = try store.expunge(mailbox: selected.mailbox.id, uids: deleted) }
            }
            selection = nil
            phase = .authenticated
            return ok("\(command.kind == .close ? "CLOSE" : "UNSELECT") completed")
        case .expunge(let uidSet):
            let selected = try requireSelected()
            guard !selected.readOnly else { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
            var candidates = selected.uids
            if let uidSet { candidates = candidates.filter { uidSet.contains($0, last: selected.uids.last) } }
            let deleted = try store.messages(mailbox: selected.mailbox.id, uids: candidates)
                .filter { $0.flags.contains(Flag.deleted) }.map(\.uid)
            let removed = try store.expunge(mailbox: selected.mailbox.id, uids: deleted)
            var lines = forget(Set(removed))
            lines += try refresh(allowExpunge: true)
            return ok("EXPUNGE completed", lines)
        case .fetch(let set, let attributes, let byUID):
            var lines = try refresh(allowExpunge: byUID)
            lines += try fetch(set, attributes, byUID: byUID)
            return ok("FETCH completed", lines)
        case .store(let set, let operation, let silent, let flags, let byUID):
            var lines = try refresh(allowExpunge: byUID)
            let selected = try requireSelected()
            guard !selected.readOnly else { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
            guard flags.allSatisfy({ $0.utf8.count <= Keywords.maxLength }) else {
                throw CommandError.no("[LIMIT] A keyword is at most \(Keywords.maxLength) bytes")
            }
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
            return ok("STORE completed", lines)
        case .copy(let set, let name, let byUID), .move(let set, let name, let byUID):
            var lines = try refresh(allowExpunge: byUID)
            let selected = try requireSelected()
            let isMove: Bool
            if case .move = command.kind { isMove = true } else { isMove = false }
            if isMove && selected.readOnly { throw CommandError.no("[READ-ONLY] Mailbox is read-only") }
            guard let target = try store.mailbox(account: account!, name: name) else {
                throw CommandError.no("[TRYCREATE] No such mailbox")
            }
            let uids = try resolve(set, byUID: byUID).map(\.uid)
            let copies = try store.copy(mailbox: selected.mailbox.id, uids: uids, to: target.id)
            // UIDPLUS (RFC 4315): COPYUID in COPY's tagged OK; for MOVE in an untagged OK before
            // the expunges (RFC 6851 §4.3).
            let code =
                copies.isEmpty
                ? ""
                : "[COPYUID \(target.uidValidity) \(SequenceSet.text(copies.map(\.source))) "
                    + "\(SequenceSet.text(copies.map(\.copy)))] "
            if isMove {
                if !code.isEmpty { lines.append(.untagged("OK \(code)Moved")) }
                let removed = try store.expunge(mailbox: selected.mailbox.id, uids: uids)
                lines += forget(Set(removed))
                return ok("MOVE completed", lines)
            }
            return ok("\(code)COPY completed", lines)
        case .search(let keys, let byUID):
            var lines = try refresh(allowExpunge: byUID)
            let selected = try requireSelected()
            let messages = try store.messages(mailbox: selected.mailbox.id, uids: selected.uids)
            let flagsByUID = Dictionary(uniqueKeysWithValues: messages.map { ($0.uid, Set($0.flags)) })
            // Sets resolved once, not per message.
            let count = UInt32(selected.uids.count)
            let ranges = keys.map { key -> [ClosedRange<UInt32>] in
                switch key {
                case .uid(let set): set.coalesced(last: selected.uids.last)
                case .sequence(let set): set.coalesced(last: count == 0 ? nil : count)
                default: []
                }
            }
            var found: [String] = []
            for (index, uid) in selected.uids.enumerated() {
                guard let flags = flagsByUID[uid] else { continue }
                let sequence = UInt32(index + 1)
                let matches = zip(keys, ranges).allSatisfy { key, ranges in
                    switch key {
                    case .all: true
                    case .seen: flags.contains(Flag.seen)
                    case .unseen: !flags.contains(Flag.seen)
                    case .deleted: flags.contains(Flag.deleted)
                    case .undeleted: !flags.contains(Flag.deleted)
                    case .flagged: flags.contains(Flag.flagged)
                    case .unflagged: !flags.contains(Flag.flagged)
                    case .answered: flags.contains(Flag.answered)
                    case .unanswered: !flags.contains(Flag.answered)
                    case .uid: SequenceSet.contains(uid, in: ranges)
                    case .sequence: SequenceSet.contains(sequence, in: ranges)
                    }
                }
                if matches { found.append(byUID ? "\(uid)" : "\(sequence)") }
            }
            lines.append(.untagged((["SEARCH"] + found).joined(separator: " ")))
            return ok("SEARCH completed", lines)
        case .idle:
            try requireAuthenticated()
            // The continuation first, then what changed meanwhile (RFC 2177's example): clients
            // such as Delta Chat's (async-imap) take anything before `+` as part of starting IDLE
            // and then wait for news after it, so an EXISTS sent first would go unheard.
            let news = try refresh(allowExpunge: true)
            phase = .idling
            idleTag = tag
            return SessionOutcome(responses: [.continuation("idling")] + news)
        case .append(let name, let requestedFlags, let date, let message):
            let account = try requireAuthenticated()
            guard let mailbox = try store.mailbox(account: account, name: name) else {
                throw CommandError.no("[TRYCREATE] No such mailbox")
            }
            let flags = Array(Set(requestedFlags.filter { $0 != Flag.recent }))
            guard flags.allSatisfy({ $0.utf8.count <= Keywords.maxLength }) else {
                throw CommandError.no("[LIMIT] A keyword is at most \(Keywords.maxLength) bytes")
            }
            let uid = try store.append(mailbox: mailbox.id, message: message, flags: flags, date: date)
            var lines: [ResponseLine] = []
            if selection?.mailbox.id == mailbox.id {
                mailboxChanged = true
                lines = try refresh(allowExpunge: false)
            }
            // UIDPLUS (RFC 4315).
            return ok("[APPENDUID \(mailbox.uidValidity) \(uid)] APPEND completed", lines)
        case .getQuotaRoot(let name):
            let account = try requireAuthenticated()
            guard try store.mailbox(account: account, name: name) != nil else { throw MailStoreError.noSuchMailbox }
            let rootLine = ResponseLine([.text("* QUOTAROOT "), IMAPString.part(name), .text(" \"\"")])
            return ok("GETQUOTAROOT completed", [rootLine, try quotaLine(account)])
        case .getQuota(let root):
            let account = try requireAuthenticated()
            guard root.isEmpty else { throw CommandError.no("[NONEXISTENT] No such quota root") }
            return ok("GETQUOTA completed", [try quotaLine(account)])
        case .getMetadata(let mailbox, let entries):
            return ok("GETMETADATA completed", try getMetadata(mailbox: mailbox, entries: entries))
        case .setMetadata(let mailbox, let entries):
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
                try store.setMetadata(account: account, mailbox: mailbox, entry: name, value: entry.value)
            }
            return ok("SETMETADATA completed")
        }
    }

    // MARK: Helpers

    @discardableResult
    private func requireAuthenticated() throws -> Account {
        guard let account, phase != .notAuthenticated else { throw CommandError.no("Not authenticated") }
        return account
    }

    private func requireSelected() throws -> Selection {
        guard let selection else { throw CommandError.bad("No mailbox selected") }
        return selection
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

    private func getMetadata(mailbox: String, entries: [String]) throws -> [ResponseLine] {
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
        guard !parts.isEmpty else { return [] }
        return [
            ResponseLine([.text("* METADATA "), .text(IMAPString.quoted(mailbox)), .text(" (")] + parts + [.text(")")])
        ]
    }

    /// Messages in `set` as (sequence number, UID); UIDs that do not exist are skipped, sequence
    /// numbers that do not exist are an error.
    private func resolve(_ set: SequenceSet, byUID: Bool) throws -> [(sequence: Int, uid: UInt32)] {
        let selected = try requireSelected()
        if byUID {
            let ranges = set.coalesced(last: selected.uids.last)
            return selected.uids.enumerated().filter { SequenceSet.contains($0.element, in: ranges) }
                .map { ($0.offset + 1, $0.element) }
        }
        let count = UInt32(selected.uids.count)
        let ranges = set.coalesced(last: count == 0 ? nil : count)
        guard set.resolved(last: count == 0 ? nil : count).count == set.ranges.count,
            ranges.allSatisfy({ $0.upperBound <= count })
        else {
            throw CommandError.bad("Invalid message sequence number")
        }
        return ranges.flatMap { $0 }.map { (Int($0), selected.uids[Int($0) - 1]) }
    }

    private mutating func fetch(_ set: SequenceSet, _ requested: [FetchAttribute], byUID: Bool) throws
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

    private static func astringText(_ value: String) -> String {
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

    /// Drops `removed` from the selection and reports each as EXPUNGE (highest first).
    private mutating func forget(_ removed: Set<UInt32>) -> [ResponseLine] {
        guard var selected = selection, !removed.isEmpty else { return [] }
        var lines: [ResponseLine] = []
        for index in selected.uids.indices.reversed() where removed.contains(selected.uids[index]) {
            lines.append(.untagged("\(index + 1) EXPUNGE"))
            selected.uids.remove(at: index)
        }
        selection = selected
        return lines
    }

    /// Tells the client what changed in the selected mailbox since it last heard. Expunges are
    /// held back while a sequence-number FETCH, STORE, SEARCH or COPY runs (RFC 3501 §7.4.1).
    private mutating func refresh(allowExpunge: Bool) throws -> [ResponseLine] {
        guard mailboxChanged, let selected = selection else { return [] }
        let current = try store.uids(mailbox: selected.mailbox.id)
        var lines: [ResponseLine] = []
        if allowExpunge {
            lines = forget(Set(selected.uids).subtracting(current))
            mailboxChanged = false
        }
        let known = selection?.uids.last ?? 0
        let added = current.filter { $0 > known }
        if !added.isEmpty {
            selection?.uids += added
            lines.append(.untagged("\(selection?.uids.count ?? 0) EXISTS"))
        }
        return lines
    }
}
