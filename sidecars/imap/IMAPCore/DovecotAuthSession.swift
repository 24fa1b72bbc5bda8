/// The server side of Dovecot's authentication protocol (version 1.2) as an MTA's SASL client
/// speaks it (Postfix: `smtpd_sasl_type = dovecot`), as a state machine: bytes and verdicts in,
/// lines to send, credentials to verify and a close out. Mechanisms PLAIN and LOGIN.
///
/// Lines end in LF; fields are separated by TAB; values are tab-escaped (`\u{1}1`, `\u{1}t`,
/// `\u{1}r`, `\u{1}n` for 0x01, TAB, CR, LF). The server's handshake lists every `MECH` before
/// `SPID` (Postfix takes SPID without a MECH before it for the wrong socket). Replies: `OK` always
/// with `user=`, `CONT` always with its data field, `FAIL` with `user=` once known and `temp`
/// when the store failed. Request ids are the client's, per connection; one verification runs at
/// a time and the lines after it wait, so the I/O layer can stop reading meanwhile.
public struct DovecotAuthSession: Sendable {
    public struct Settings: Sendable {
        /// Longer lines close the connection (a PLAIN response of 1 KiB fields is about 2.8 KiB).
        public var maxLineLength = 8192
        /// Accept PLAIN and LOGIN from requests without `secured` (no TLS to the SMTP client).
        public var allowPlaintext = false
        /// Exchanges waiting for a `CONT`; a new one beyond this drops the oldest (the client
        /// abandons an exchange silently when its SMTP client goes away).
        public var maxPendingRequests = 16
        /// Longest user name and password accepted, in bytes.
        public var maxCredentialLength = 1024
        /// `SPID`, `CUID` and `COOKIE` of the handshake (the MTA does not use them).
        public var processID = 0
        public var connectionID = 0
        public var cookie = String(repeating: "0", count: 32)

        public init() {}
    }

    public enum Mechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    /// What a session asks the store to check.
    public struct Credentials: Equatable, Sendable {
        public var id: UInt32
        public var user: String
        public var password: String
        /// `rip=`: the SMTP client's address, for the failed-login limiter.
        public var remoteAddress: String?

        public init(id: UInt32, user: String, password: String, remoteAddress: String?) {
            self.id = id
            self.user = user
            self.password = password
            self.remoteAddress = remoteAddress
        }
    }

    /// The answer to `Credentials`.
    public enum Verdict: Equatable, Sendable {
        /// Logged in (or created) as this account name.
        case accepted(user: String)
        case rejected
        /// The remote address has too many failed logins.
        case blocked
        /// The remote address has created too many accounts lately.
        case creationLimited
        /// The store failed: the client may try again later.
        case temporaryFailure
    }

    /// Exchanges that ended (an `OK` or a `FAIL` sent) since `takeTally()`, for the counters.
    public struct Tally: Equatable, Sendable {
        public var succeeded = 0
        public var failed = 0

        public init(succeeded: Int = 0, failed: Int = 0) {
            self.succeeded = succeeded
            self.failed = failed
        }
    }

    public enum Action: Equatable, Sendable {
        /// Lines to write, each ending in LF.
        case send(String)
        case verify(Credentials)
        /// After what was sent so far.
        case close
    }

    private enum Phase: Equatable, Sendable {
        case expectingVersion, expectingCPID, ready, closed
    }

    /// An exchange waiting for the client's next `CONT`.
    private struct Pending: Sendable {
        enum Step: Sendable { case plainResponse, loginUser, loginPassword(user: String) }
        var step: Step
        var secured: Bool
        var remoteAddress: String?
    }

    public let settings: Settings
    private var phase = Phase.expectingVersion
    private var input: [UInt8] = []
    private var pending: [UInt32: Pending] = [:]
    private var pendingOrder: [UInt32] = []
    /// The request being verified and the user name it gave.
    private var verifying: (id: UInt32, user: String)?
    private var tally = Tally()

    public init(settings: Settings) {
        self.settings = settings
    }

    /// What the server sends as soon as the client connects.
    public var handshake: String {
        var text = "VERSION\t1\t2\n"
        for mechanism in Mechanism.allCases { text += "MECH\t\(mechanism.rawValue)\tplaintext\n" }
        text += "SPID\t\(settings.processID)\nCUID\t\(settings.connectionID)\nCOOKIE\t\(settings.cookie)\nDONE\n"
        return text
    }

    public var isClosed: Bool { phase == .closed }
    /// Whether the client has sent VERSION and CPID.
    public var isReady: Bool { phase == .ready }
    /// Whether a verification is outstanding (`verified` must come before more input is handled).
    public var isVerifying: Bool { verifying != nil }

    /// The exchanges that ended since the last call.
    public mutating func takeTally() -> Tally {
        defer { tally = Tally() }
        return tally
    }

    /// Feeds received bytes; returns what they call for.
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> [Action] {
        guard phase != .closed else { return [] }
        input.append(contentsOf: bytes)
        return drain()
    }

    /// The store's verdict on the outstanding `verify`; then the lines that waited behind it.
    public mutating func verified(_ id: UInt32, _ verdict: Verdict) -> [Action] {
        guard let current = verifying, current.id == id else { return [] }
        verifying = nil
        guard phase != .closed else { return [] }
        var actions: [Action]
        switch verdict {
        case .accepted(let user):
            tally.succeeded += 1
            actions = [.send("OK\t\(id)\tuser=\(Self.escape(user))\n")]
        case .rejected:
            actions = [fail(id, user: current.user, reason: "Authentication failed")]
        case .blocked:
            actions = [fail(id, user: current.user, reason: "Too many failed logins, try later")]
        case .creationLimited:
            actions = [fail(id, user: current.user, reason: "Too many new accounts from your address, try later")]
        case .temporaryFailure:
            actions = [fail(id, user: current.user, reason: "Temporary authentication failure", temporary: true)]
        }
        actions += drain()
        return actions
    }

    // MARK: Lines

    private mutating func drain() -> [Action] {
        var actions: [Action] = []
        var start = 0
        while phase != .closed && verifying == nil,
            let lf = input[start...].firstIndex(of: UInt8(ascii: "\n"))
        {
            let line = input[start..<lf]
            start = lf + 1
            if line.count > settings.maxLineLength {
                actions.append(close())
                break
            }
            actions += handle(line)
        }
        input.removeFirst(start)
        if phase != .closed && input.count > settings.maxLineLength && !input.contains(UInt8(ascii: "\n")) {
            actions.append(close())
        }
        if phase == .closed { input = [] }
        return actions
    }

    private mutating func close() -> Action {
        phase = .closed
        pending = [:]
        pendingOrder = []
        return .close
    }

    private mutating func handle(_ line: ArraySlice<UInt8>) -> [Action] {
        guard let text = String(validating: line, as: UTF8.self) else { return [close()] }
        let fields = text.split(separator: "\t", omittingEmptySubsequences: false)
        let command = fields[0]
        switch phase {
        case .expectingVersion:
            // The first line must be a VERSION with our major version.
            guard command == "VERSION", fields.count >= 3, fields[1] == "1", UInt32(fields[2]) != nil else {
                return [close()]
            }
            phase = .expectingCPID
            return []
        case .expectingCPID:
            guard command == "CPID", fields.count >= 2, UInt32(fields[1]) != nil else { return [close()] }
            phase = .ready
            return []
        case .ready:
            switch command {
            case "AUTH": return auth(fields)
            case "CONT": return cont(fields)
            default: return [close()]
            }
        case .closed:
            return []
        }
    }

    /// `AUTH id mechanism param...`: starts an exchange.
    private mutating func auth(_ fields: [Substring]) -> [Action] {
        guard fields.count >= 3, let id = UInt32(fields[1]), id != 0, pending[id] == nil else { return [close()] }
        var secured = false
        var service: String?
        var remoteAddress: String?
        var initial: String?
        for field in fields.dropFirst(3) {
            let (key, value) = Self.parameter(field)
            switch key {
            case "secured": secured = true
            case "service": service = value
            case "rip": remoteAddress = value.flatMap { $0.isEmpty ? nil : $0 }
            case "resp": initial = value ?? ""
            default: break  // nologin, lip, lport, rport, session, ...: not needed
            }
        }
        guard service?.isEmpty == false else { return [close()] }
        guard let mechanism = Mechanism(rawValue: fields[2].uppercased()) else {
            return [fail(id, reason: "Unsupported authentication mechanism")]
        }
        guard secured || settings.allowPlaintext else {
            return [fail(id, reason: "Plaintext authentication disallowed on non-secure connections")]
        }
        let request = Pending(step: .plainResponse, secured: secured, remoteAddress: remoteAddress)
        switch mechanism {
        case .plain:
            guard let initial, !initial.isEmpty else { return wait(id, request, challenge: "") }
            return plainResponse(id, initial, request)
        case .login:
            var request = request
            request.step = .loginUser
            guard let initial, !initial.isEmpty else { return wait(id, request, challenge: "Username:") }
            return loginStep(id, initial, request)
        }
    }

    /// `CONT id data`: the client's answer to a challenge.
    private mutating func cont(_ fields: [Substring]) -> [Action] {
        guard fields.count >= 2, let id = UInt32(fields[1]) else { return [close()] }
        guard let request = pending.removeValue(forKey: id) else {
            return [fail(id, reason: "Authentication request timed out")]
        }
        pendingOrder.removeAll { $0 == id }
        let data = fields.count > 2 ? String(fields[2]) : ""
        switch request.step {
        case .plainResponse: return plainResponse(id, data, request)
        case .loginUser, .loginPassword: return loginStep(id, data, request)
        }
    }

    private mutating func plainResponse(_ id: UInt32, _ base64: String, _ request: Pending) -> [Action] {
        guard let decoded = Base64.decode(base64) else { return [fail(id, reason: "Invalid base64 data")] }
        // authzid NUL authcid NUL password; an authzid other than the user is a master login: refused.
        let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let authzid = String(validating: parts[0], as: UTF8.self),
            let user = String(validating: parts[1], as: UTF8.self),
            let password = String(validating: parts[2], as: UTF8.self)
        else { return [fail(id, reason: "Invalid PLAIN response")] }
        guard authzid.isEmpty || authzid == user else {
            return [fail(id, user: user, reason: "Authorization identity not allowed")]
        }
        return check(id, user: user, password: password, request)
    }

    private mutating func loginStep(_ id: UInt32, _ base64: String, _ request: Pending) -> [Action] {
        guard let decoded = Base64.decode(base64), let value = String(validating: decoded, as: UTF8.self) else {
            return [fail(id, reason: "Invalid base64 data")]
        }
        switch request.step {
        case .loginPassword(let user):
            return check(id, user: user, password: value, request)
        default:
            guard Self.acceptable(value, limit: settings.maxCredentialLength) else {
                return [fail(id, reason: "Invalid user name")]
            }
            var next = request
            next.step = .loginPassword(user: value)
            return wait(id, next, challenge: "Password:")
        }
    }

    private mutating func check(_ id: UInt32, user: String, password: String, _ request: Pending) -> [Action] {
        guard Self.acceptable(user, limit: settings.maxCredentialLength), !user.isEmpty else {
            return [fail(id, reason: "Invalid user name")]
        }
        guard !password.isEmpty, password.utf8.count <= settings.maxCredentialLength, !password.utf8.contains(0)
        else { return [fail(id, user: user, reason: "Authentication failed")] }
        verifying = (id, user)
        return [.verify(Credentials(id: id, user: user, password: password, remoteAddress: request.remoteAddress))]
    }

    /// Sends a challenge and remembers the exchange.
    private mutating func wait(_ id: UInt32, _ request: Pending, challenge: String) -> [Action] {
        if pendingOrder.count >= settings.maxPendingRequests {
            pending[pendingOrder.removeFirst()] = nil
        }
        pending[id] = request
        pendingOrder.append(id)
        return [.send("CONT\t\(id)\t\(Base64.encode(Array(challenge.utf8)))\n")]
    }

    private mutating func fail(_ id: UInt32, user: String? = nil, reason: String, temporary: Bool = false) -> Action {
        tally.failed += 1
        var line = "FAIL\t\(id)"
        if let user, Self.acceptable(user, limit: settings.maxCredentialLength) {
            line += "\tuser=\(Self.escape(user))"
        }
        if temporary { line += "\ttemp" }
        return .send(line + "\treason=\(Self.escape(reason))\n")
    }

    /// A user name we pass on: no control characters (NUL, TAB, LF among them), bounded.
    static func acceptable(_ name: String, limit: Int) -> Bool {
        name.utf8.count <= limit && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// `key=value` (value unescaped) or a bare flag.
    static func parameter(_ field: Substring) -> (key: Substring, value: String?) {
        guard let equals = field.firstIndex(of: "=") else { return (field, nil) }
        return (field[..<equals], unescape(field[field.index(after: equals)...]))
    }

    /// Dovecot's tab escaping: 0x01 → `^A1`, TAB → `^At`, CR → `^Ar`, LF → `^An` (`^A` = 0x01).
    public static func escape(_ value: String) -> String {
        var result = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\u{1}": result += "\u{1}1"
            case "\t": result += "\u{1}t"
            case "\r": result += "\u{1}r"
            case "\n": result += "\u{1}n"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    public static func unescape(_ value: some StringProtocol) -> String {
        guard value.contains("\u{1}") else { return String(value) }
        var result = ""
        var escaped = false
        for scalar in value.unicodeScalars {
            if escaped {
                switch scalar {
                case "1": result += "\u{1}"
                case "t": result += "\t"
                case "r": result += "\r"
                case "n": result += "\n"
                case "0": result += "\u{0}"
                default: result.unicodeScalars.append(scalar)
                }
                escaped = false
            } else if scalar == "\u{1}" {
                escaped = true
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// Standard base64 (RFC 4648, padded), strict: nil on any other byte or bad padding.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * $1.offset) }
            for position in 0..<4 {
                out.append(
                    position <= chunk.count ? alphabet[Int(value >> (18 - 6 * position) & 63)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            var value: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let byte = bytes[index + offset]
                if byte == UInt8(ascii: "=") {
                    // Padding only in the last group's last two places, and nothing after it.
                    guard index + 4 == bytes.count, offset >= 2 else { return nil }
                    padding += 1
                    value <<= 6
                    continue
                }
                guard padding == 0, let digit = sextet(byte) else { return nil }
                value = value << 6 | UInt32(digit)
            }
            out.append(UInt8(value >> 16 & 0xFF))
            if padding < 2 { out.append(UInt8(value >> 8 & 0xFF)) }
            if padding < 1 { out.append(UInt8(value & 0xFF)) }
            index += 4
        }
        return out
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
