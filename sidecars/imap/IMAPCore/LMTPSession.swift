/// What LMTP learns for one recipient of a delivery.
public enum DeliveryResult: Equatable, Sendable {
    case delivered
    case unknownRecipient
    case overQuota
}

/// Where LMTP delivers.
public protocol LMTPBackend: Sendable {
    func recipientExists(_ address: String) throws -> Bool
    /// Stores the message for every recipient; a returned `.delivered` is durable. `sender` is
    /// the envelope sender (MAIL FROM, empty for bounces).
    func deliver(_ message: [UInt8], from sender: String, to recipients: [String]) throws -> [DeliveryResult]
}

/// An LMTP server session (RFC 2033) as a state machine: bytes in, reply lines out, one reply
/// per accepted recipient after DATA. Replies carry their CRLF.
public struct LMTPSession: Sendable {
    public struct Settings: Sendable {
        public var hostname = "localhost"
        public var maxMessageSize = 31_457_280
        public var maxRecipients = 1000
        public var maxLineLength = 4096

        public init() {}
    }

    public struct Output: Equatable, Sendable {
        public var replies: [String]
        public var close: Bool
    }

    private enum Phase {
        case greeted, ready, mail, data
    }

    public let settings: Settings
    private let backend: any LMTPBackend
    private var phase = Phase.greeted
    private var sender = ""
    private var recipients: [String] = []
    private var input: [UInt8] = []
    /// Where in `input` the search for the next line end resumes.
    private var scanned = 0
    /// Part of the current data line is already in `message`.
    private var dataLineStarted = false
    private var message: [UInt8] = []
    private var messageTooLarge = false
    private var closed = false

    public init(settings: Settings, backend: any LMTPBackend) {
        self.settings = settings
        self.backend = backend
    }

    public var greeting: String { "220 \(settings.hostname) LMTP ready\r\n" }

    /// Feeds received bytes; returns the replies they call for.
    ///
    /// Every byte is looked at about once: the search for a line end resumes where the last one
    /// stopped, and message data goes to the message as it comes, line end or not, so that a
    /// long line costs neither rescans nor a second buffer. A command line is bounded by
    /// `maxLineLength`.
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> Output {
        input.append(contentsOf: bytes)
        var replies: [String] = []
        var start = 0
        while !closed {
            let from = max(start, scanned)
            let lf = input[from...].firstIndex(of: UInt8(ascii: "\n"))
            scannedBytes += (lf ?? input.endIndex) - from + (lf == nil ? 0 : 1)
            guard let lf else {
                scanned = input.endIndex
                if phase == .data { start += takePartialDataLine(input[start...]) }
                break
            }
            var line = input[start..<lf]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            start = lf + 1
            scanned = start
            if let reply = handle(line) { replies.append(reply) }
        }
        input.removeFirst(start)
        scanned -= start
        if !closed && phase != .data && input.count > settings.maxLineLength {
            closed = true
            replies.append("500 5.5.2 Line too long\r\n")
        }
        return Output(replies: replies, close: closed)
    }

    /// Bytes examined so far looking for line ends (for tests: stays proportional to the input).
    public private(set) var scannedBytes = 0

    /// Takes what can already go into the message from a data line whose end has not come:
    /// all but a final CR (it may start the CRLF), and nothing yet from a line that may still be
    /// the lone dot. Returns how many bytes were taken.
    private mutating func takePartialDataLine(_ partial: ArraySlice<UInt8>) -> Int {
        var content = partial
        if content.last == UInt8(ascii: "\r") { content = content.dropLast() }
        var taken = 0
        if !dataLineStarted {
            guard content.count >= 2 || (content.count == 1 && content.first != UInt8(ascii: ".")) else { return 0 }
            if content.first == UInt8(ascii: ".") {
                content = content.dropFirst()
                taken = 1
            }
        }
        guard !content.isEmpty || taken > 0 else { return 0 }
        dataLineStarted = true
        appendData(content)
        return taken + content.count
    }

    private mutating func handle(_ line: ArraySlice<UInt8>) -> String? {
        if phase == .data { return dataLine(line) }
        guard line.count <= settings.maxLineLength else {
            closed = true
            return "500 5.5.2 Line too long\r\n"
        }
        let text = String(decoding: line, as: UTF8.self)
        let verb = text.prefix { $0 != " " && $0 != ":" }.uppercased()
        let argument = text.dropFirst(verb.count)
        switch verb {
        case "LHLO":
            phase = .ready
            recipients = []
            return "250-\(settings.hostname)\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                + "250-SMTPUTF8\r\n250 SIZE \(settings.maxMessageSize)\r\n"
        case "HELO", "EHLO": return "500 5.5.1 This is LMTP: use LHLO\r\n"
        case "MAIL":
            guard phase == .ready else {
                return phase == .greeted ? "503 5.5.1 LHLO first\r\n" : "503 5.5.1 Nested MAIL\r\n"
            }
            guard let (from, parameters) = Self.path(argument, keyword: "FROM:") else {
                return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
            }
            for parameter in parameters {
                let parts = parameter.split(separator: "=", maxSplits: 1)
                if parts.first?.uppercased() == "SIZE", let size = parts.last.flatMap({ Int($0) }),
                    size > settings.maxMessageSize
                {
                    return "552 5.3.4 Message too large\r\n"
                }
            }
            phase = .mail
            sender = from
            return "250 2.1.0 Ok\r\n"
        case "RCPT":
            guard phase == .mail else { return "503 5.5.1 MAIL first\r\n" }
            guard let (address, _) = Self.path(argument, keyword: "TO:"), !address.isEmpty else {
                return "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
            }
            guard recipients.count < settings.maxRecipients else { return "452 4.5.3 Too many recipients\r\n" }
            do {
                guard try backend.recipientExists(address) else { return "550 5.1.1 <\(address)>: no such user\r\n" }
            } catch {
                return "451 4.3.0 Temporary lookup failure\r\n"
            }
            recipients.append(address)
            return "250 2.1.5 Ok\r\n"
        case "DATA":
            guard phase == .mail else { return "503 5.5.1 MAIL first\r\n" }
            guard !recipients.isEmpty else { return "503 5.5.1 No valid recipients\r\n" }
            phase = .data
            message = []
            messageTooLarge = false
            return "354 End data with <CR><LF>.<CR><LF>\r\n"
        case "RSET":
            if phase != .greeted { phase = .ready }
            recipients = []
            return "250 2.0.0 Ok\r\n"
        case "NOOP": return "250 2.0.0 Ok\r\n"
        case "VRFY": return "252 2.5.0 Cannot verify\r\n"
        case "QUIT":
            closed = true
            return "221 2.0.0 Bye\r\n"
        default: return "500 5.5.2 Unknown command\r\n"
        }
    }

    /// A data line: the lone dot ends the message, a leading dot is unstuffed, lines end in CRLF.
    /// Its start may already be in the message (`takePartialDataLine`).
    private mutating func dataLine(_ line: ArraySlice<UInt8>) -> String? {
        defer { dataLineStarted = false }
        if dataLineStarted {
            appendData(line)
        } else {
            if line.count == 1 && line.first == UInt8(ascii: ".") { return endOfData() }
            appendData(line.first == UInt8(ascii: ".") ? line.dropFirst() : line)
        }
        appendData([13, 10])
        return nil
    }

    private mutating func appendData(_ content: some Collection<UInt8>) {
        if message.count + content.count > settings.maxMessageSize {
            messageTooLarge = true
            message = []
        }
        if !messageTooLarge { message.append(contentsOf: content) }
    }

    private mutating func endOfData() -> String {
        defer {
            phase = .ready
            recipients = []
            message = []
        }
        if messageTooLarge {
            return recipients.map { "552 5.3.4 <\($0)>: message too large\r\n" }.joined()
        }
        let results: [DeliveryResult]
        do {
            results = try backend.deliver(message, from: sender, to: recipients)
        } catch {
            return recipients.map { "451 4.3.0 <\($0)>: temporary failure\r\n" }.joined()
        }
        return zip(recipients, results).map { recipient, result in
            switch result {
            case .delivered: "250 2.0.0 <\(recipient)> delivered\r\n"
            case .unknownRecipient: "550 5.1.1 <\(recipient)>: no such user\r\n"
            case .overQuota: "552 5.2.2 <\(recipient)>: mailbox full\r\n"
            }
        }.joined()
    }

    /// `FROM:<address> PARAM=VALUE ...` after the verb.
    static func path(_ argument: Substring, keyword: String) -> (String, [Substring])? {
        var rest = argument.drop { $0 == " " }
        guard rest.uppercased().hasPrefix(keyword) else { return nil }
        rest = rest.dropFirst(keyword.count).drop { $0 == " " }
        guard rest.first == "<", let close = rest.firstIndex(of: ">") else { return nil }
        let address = String(rest[rest.index(after: rest.startIndex)..<close])
        guard !address.contains(where: { $0 == " " || $0 == "<" }) else { return nil }
        return (address, rest[rest.index(after: close)...].split(separator: " "))
    }
}
