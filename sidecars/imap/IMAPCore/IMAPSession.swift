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
    /// Push notifications are posted (advertised as XDELTAPUSH).
    public var push = false
    /// The longest push device token accepted, in bytes.
    public var maxPushTokenSize = 4096
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
    /// A LOGIN did not log the client in (for the counters). `checked`: the credentials were
    /// wrong (also for the per-source limit); `closing`: close the connection after the reply.
    case loginFailed(checked: Bool, closing: Bool)
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

    public internal(set) var phase: Phase = .notAuthenticated
    public internal(set) var account: Account?
    public var configuration: SessionConfiguration
    /// TURN and iroh entries from discovery, by lowercased entry name.
    public var discoveryMetadata: [String: String] = [:]
    /// Set by the I/O layer while this client's source address has too many failed logins.
    public var loginBlocked = false
    /// Asked before a login succeeds (the per-account session limit); false refuses it.
    public var admit: (@Sendable (Account) -> Bool)?
    /// Asked before a login creates its account (the per-source creation limit); false refuses it.
    public var mayCreateAccount: (@Sendable () -> Bool)?
    let store: any MailStore
    var selection: Selection?
    var idleTag: String?
    var mailboxChanged = false
    var compressed = false
    var badCommands = 0
    var failedLogins = 0
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
            if configuration.push { list.append("XDELTAPUSH") }
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
        var outcome: SessionOutcome
        do {
            outcome = try execute(command)
        } catch let error as CommandError where error.status == .bad {
            return countBad(SessionOutcome(responses: [.tagged(command.tag, .bad, error.message)]))
        } catch let error as CommandError {
            outcome = SessionOutcome(responses: [.tagged(command.tag, error.status, error.message)])
        } catch let error as MailStoreError {
            outcome = SessionOutcome(responses: [.tagged(command.tag, .no, Self.describe(error))])
        } catch {
            outcome = SessionOutcome(responses: [.tagged(command.tag, .no, "[SERVERBUG] Internal error")])
        }
        // A LOGIN refused with NO (blocked source, TLS required, limits, store errors) failed too.
        if case .login = command.kind, outcome.effect == nil {
            outcome.effect = .loginFailed(checked: false, closing: false)
        }
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
        case .pushTokensTooMany: "[METADATA TOOMANY] Too many device tokens"
        }
    }

    private mutating func countBad(_ outcome: SessionOutcome) -> SessionOutcome {
        badCommands += 1
        guard badCommands >= configuration.maxBadCommands else { return outcome }
        phase = .loggedOut
        return SessionOutcome(
            responses: outcome.responses + [.untagged("BYE Too many invalid commands")], effect: .close)
    }

    /// Runs one command: each has its own function (IMAPSession+Commands.swift).
    private mutating func execute(_ command: Command) throws -> SessionOutcome {
        let tag = command.tag
        switch command.kind {
        case .capability: return capability(tag)
        case .noop: return try noop(tag, verb: "NOOP")
        case .check: return try noop(tag, verb: "CHECK")
        case .logout: return logout(tag)
        case .id: return id(tag)
        case .startTLS: return try startTLS(tag)
        case .login(let user, let password): return try login(tag, user: user, password: password)
        case .enable: return try enable(tag)
        case .compress(let mechanism): return try compress(tag, mechanism: mechanism)
        case .select(let name, let readOnly): return try select(tag, name, readOnly: readOnly)
        case .create(let name): return try create(tag, name)
        case .delete(let name): return try delete(tag, name)
        case .subscribe, .unsubscribe: return try subscribe(tag)
        case .list(let reference, let pattern, let subscribedOnly):
            return try list(tag, reference: reference, pattern: pattern, subscribedOnly: subscribedOnly)
        case .status(let name, let items): return try status(tag, name, items: items)
        case .append(let name, let flags, let date, let message):
            return try append(tag, name, flags: flags, date: date, message: message)
        case .idle: return try idle(tag)
        case .close: return try close(tag, expunging: true)
        case .unselect: return try close(tag, expunging: false)
        case .expunge(let uids): return try expunge(tag, uids: uids)
        case .fetch(let set, let attributes, let byUID): return try fetch(tag, set, attributes, byUID: byUID)
        case .store(let set, let operation, let silent, let flags, let byUID):
            return try store(tag, set, operation, silent: silent, flags: flags, byUID: byUID)
        case .copy(let set, let name, let byUID): return try copy(tag, set, to: name, byUID: byUID, move: false)
        case .move(let set, let name, let byUID): return try copy(tag, set, to: name, byUID: byUID, move: true)
        case .search(let keys, let byUID): return try search(tag, keys, byUID: byUID)
        case .getQuotaRoot(let name): return try getQuotaRoot(tag, name)
        case .getQuota(let root): return try getQuota(tag, root: root)
        case .getMetadata(let mailbox, let entries): return try getMetadata(tag, mailbox: mailbox, entries: entries)
        case .setMetadata(let mailbox, let entries): return try setMetadata(tag, mailbox: mailbox, entries: entries)
        }
    }

    // MARK: Helpers

    @discardableResult
    func requireAuthenticated() throws -> Account {
        guard let account, phase != .notAuthenticated else { throw CommandError.no("Not authenticated") }
        return account
    }

    func requireSelected() throws -> Selection {
        guard let selection else { throw CommandError.bad("No mailbox selected") }
        return selection
    }

    /// Messages in `set` as (sequence number, UID); UIDs that do not exist are skipped, sequence
    /// numbers that do not exist are an error.
    func resolve(_ set: SequenceSet, byUID: Bool) throws -> [(sequence: Int, uid: UInt32)] {
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

    /// Drops `removed` from the selection and reports each as EXPUNGE (highest first).
    mutating func forget(_ removed: Set<UInt32>) -> [ResponseLine] {
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
    mutating func refresh(allowExpunge: Bool) throws -> [ResponseLine] {
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
