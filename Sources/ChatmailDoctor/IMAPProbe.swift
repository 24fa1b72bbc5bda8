/// The IMAP checks, as Delta Chat makes them: TLS on the port and name clients use (certificate name and
/// expiry), LOGIN, and the discovery METADATA, compared with what the other probes tested.
public struct IMAPProbe {
    /// What discovery should hand out, from the services that were tested (nil: that service is off).
    public struct Expected: Sendable {
        /// `host:port` of `/shared/vendor/deltachat/turn`.
        public var turn: String?
        /// `/shared/vendor/deltachat/irohrelay`.
        public var irohRelay: String?

        public init(turn: String?, irohRelay: String?) { (self.turn, self.irohRelay) = (turn, irohRelay) }
    }

    public static let turnEntry = "/shared/vendor/deltachat/turn"
    public static let irohEntry = "/shared/vendor/deltachat/irohrelay"

    public var host: String
    public var port: UInt16
    public var address: String
    public var password: String
    public var expected: Expected
    public var timeout: Duration

    public init(
        host: String, port: UInt16, address: String, password: String, expected: Expected, timeout: Duration
    ) {
        (self.host, self.port, self.address, self.password) = (host, port, address, password)
        (self.expected, self.timeout) = (expected, timeout)
    }

    /// The steps, and the METADATA values a client got (empty when the steps did not get that far).
    public func run() -> (steps: [DoctorStep], discovery: [String: String]) {
        let log = StepLog(service: "imap", host: host)
        let session = log.run("tls", timeout: timeout) { deadline throws(NetError) in
            let socket = try Socket.connect(host: host, port: port, deadline: deadline)
            let tls = try TLSStream(over: socket, serverName: host, alpn: ["imap"], deadline: deadline)
            let reader = StreamReader(tls)
            let greeting = try reader.readLine(deadline: deadline)
            guard greeting.hasPrefix("* OK") else { throw .protocolError("greeting: \(greeting.prefix(80))") }
            guard let certificate = tls.certificate else { throw .tls("no certificate") }
            let (verdict, text, cause) = certificate.verdict(name: host)
            return Outcome(value: reader, detail: "\(host):\(port): \(text)", verdict: verdict, cause: cause)
        }
        guard let session else {
            log.skip("login", "needs the TLS connection")
            return (log.steps, [:])
        }
        defer { session.stream.close() }
        let loggedIn = log.run("login", timeout: timeout) { deadline throws(NetError) in
            let answer = try command(session, "a1", "LOGIN \(quoted(address)) \(quoted(password))", deadline: deadline)
            guard answer.status.hasPrefix("a1 OK") else {
                return Outcome(
                    value: false, detail: "refused: \(answer.status)", verdict: .fail, cause: .authentication)
            }
            return Outcome(value: true, detail: "\(address) (a throwaway account)")
        }
        guard loggedIn == true else {
            log.skip("metadata", "needs a login")
            return (log.steps, [:])
        }
        let values = log.run("metadata", timeout: timeout) { deadline throws(NetError) in
            let answer = try command(
                session, "a2", "GETMETADATA \"\" (\(Self.turnEntry) \(Self.irohEntry))", deadline: deadline)
            guard answer.status.hasPrefix("a2 OK") else { throw .protocolError("GETMETADATA: \(answer.status)") }
            let values = MetadataResponse.values(answer.untagged)
            return Outcome(value: values, detail: Self.describe(values))
        }
        if let values {
            for (step, verdict, detail) in Self.compare(values, with: expected) {
                log.steps.append(
                    DoctorStep(
                        service: "imap", step: step, verdict: verdict, detail: detail,
                        cause: verdict == .fail ? .discoveryMismatch : nil))
            }
        }
        _ = try? command(session, "a3", "LOGOUT", deadline: Deadline(in: .milliseconds(500)))
        return (log.steps, values ?? [:])
    }

    /// What a client gets, with the TURN password left out.
    static func describe(_ values: [String: String]) -> String {
        guard !values.isEmpty else { return "no discovery entries" }
        return values.keys.sorted().map { key in
            let value = values[key]!
            if key == turnEntry, let turn = TURNDiscoveryValue(value) {
                return "turn \(turn.host):\(turn.port) (user \(turn.username))"
            }
            return "\(key.split(separator: "/").last ?? "") \(value)"
        }.joined(separator: ", ")
    }

    /// Whether discovery points at what was tested: one (step, verdict, detail) per service.
    static func compare(_ values: [String: String], with expected: Expected) -> [(String, DoctorStep.Verdict, String)] {
        var result: [(String, DoctorStep.Verdict, String)] = []
        let turn = values[turnEntry].flatMap(TURNDiscoveryValue.init)
        switch (expected.turn, turn) {
        case (nil, nil): break
        case (let tested?, nil):
            result.append(("discovery turn", .fail, "clients get no TURN server; tested \(tested)"))
        case (nil, let served?):
            result.append(("discovery turn", .warn, "clients get \(served.host):\(served.port) though TURN is off"))
        case (let tested?, let served?):
            let given = "\(served.host):\(served.port)"
            result.append(
                given == tested
                    ? ("discovery turn", .pass, "clients get \(given), as tested")
                    : ("discovery turn", .fail, "clients get \(given), but \(tested) was tested"))
        }
        switch (expected.irohRelay, values[irohEntry]) {
        case (nil, nil): break
        case (let tested?, nil):
            result.append(("discovery iroh", .fail, "clients get no iroh relay; tested \(tested)"))
        case (nil, let served?):
            result.append(("discovery iroh", .warn, "clients get \(served) though iroh is off"))
        case (let tested?, let served?):
            result.append(
                served == tested
                    ? ("discovery iroh", .pass, "clients get \(served), as tested")
                    : ("discovery iroh", .fail, "clients get \(served), but \(tested) was tested"))
        }
        return result
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Sends a tagged command; returns its untagged bytes (literals included) and the tagged status line.
    private func command(_ session: StreamReader, _ tag: String, _ text: String, deadline: Deadline) throws(NetError)
        -> (untagged: [UInt8], status: String)
    {
        try session.stream.write(Array("\(tag) \(text)\r\n".utf8), deadline: deadline)
        var untagged: [UInt8] = []
        while true {
            let line = try session.readLine(deadline: deadline)
            if line.hasPrefix(tag + " ") { return (untagged, line) }
            untagged += Array(line.utf8) + [0x0D, 0x0A]
            // A literal: its bytes follow the line as they are.
            if line.hasSuffix("}"), let open = line.lastIndex(of: "{"),
                let count = Int(line[line.index(after: open)..<line.index(before: line.endIndex)])
            {
                untagged += try session.read(exactly: count, deadline: deadline)
            }
        }
    }
}

/// Reads `* METADATA "" (entry value entry value ...)` responses: quoted strings, literals and atoms.
enum MetadataResponse {
    static func values(_ bytes: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        let prefix = Array("* METADATA ".utf8)
        var index = 0
        while index < bytes.count {
            guard bytes[index...].starts(with: prefix) else {
                index += 1
                continue
            }
            index += prefix.count
            guard skipString(bytes, &index) != nil else { continue }
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "(") else { continue }
            index += 1
            while index < bytes.count, bytes[index] != UInt8(ascii: ")") {
                while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
                guard let key = skipString(bytes, &index) else { break }
                while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
                guard let value = skipString(bytes, &index) else { break }
                result[key.lowercased()] = value
            }
        }
        return result
    }

    /// Reads a quoted string, a literal (`{n}` CRLF and n bytes) or an atom at `index`.
    private static func skipString(_ bytes: [UInt8], _ index: inout Int) -> String? {
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "\"") {
            var out: [UInt8] = []
            index += 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                out.append(bytes[index])
                index += 1
            }
            index += 1
            return String(decoding: out, as: UTF8.self)
        }
        if bytes[index] == UInt8(ascii: "{") {
            guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "}")),
                let count = Int(String(decoding: bytes[(index + 1)..<close], as: UTF8.self)),
                close + 3 + count <= bytes.count
            else { return nil }
            let start = close + 3
            index = start + count
            return String(decoding: bytes[start..<(start + count)], as: UTF8.self)
        }
        let start = index
        while index < bytes.count, ![UInt8(ascii: " "), UInt8(ascii: ")"), 0x0D, 0x0A].contains(bytes[index]) {
            index += 1
        }
        return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }
}
