import ChatmailCrypto
import TURNCore

/// A TURN credential as discovery hands it out: `host:port:username:password`.
public struct TURNDiscoveryValue: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var username: String
    public var password: String

    public init(host: String, port: UInt16, username: String, password: String) {
        (self.host, self.port, self.username, self.password) = (host, port, username, password)
    }

    /// Parses the METADATA value; the password (base64) has no colon, the host may be an IPv6 literal.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, let port = UInt16(parts[parts.count - 3]) else { return nil }
        self.init(
            host: parts[0..<(parts.count - 3)].joined(separator: ":"), port: port, username: parts[parts.count - 2],
            password: parts[parts.count - 1])
    }
}

/// The TURN checks, as a calling client would make them: STUN over UDP and TCP, Allocate over UDP, TCP and
/// TLS with the credential IMAP hands out (else one the supervisor minted), and a relay-only round trip
/// between two allocations.
public struct TURNProbe {
    /// Where the credential came from.
    public enum CredentialSource: Sendable, Equatable {
        /// IMAP's METADATA `/shared/vendor/deltachat/turn`, read after a LOGIN: what clients get.
        case imap
        /// The supervisor's discovery answer; `imapEnabled`: IMAP is on but handed out none.
        case supervisor(imapEnabled: Bool)
    }

    public var host: String
    public var port: UInt16
    public var tlsPort: UInt16?
    /// Nil when there is none (TURN not ready, or neither IMAP nor the supervisor answered).
    public var credential: TURNDiscoveryValue?
    public var source: CredentialSource
    public var timeout: Duration

    public init(
        host: String, port: UInt16, tlsPort: UInt16?, credential: TURNDiscoveryValue?,
        source: CredentialSource = .supervisor(imapEnabled: false), timeout: Duration
    ) {
        (self.host, self.port, self.tlsPort, self.credential) = (host, port, tlsPort, credential)
        (self.source, self.timeout) = (source, timeout)
    }

    /// The credential step: where the credential came from (a warning when IMAP should have given it).
    func credentialStep(_ credential: TURNDiscoveryValue) -> DoctorStep {
        let what = "\(credential.host):\(credential.port), user \(credential.username)"
        return switch source {
        case .imap:
            DoctorStep(
                service: "turn", step: "credential", verdict: .pass,
                detail: "as IMAP hands it out (METADATA /shared/vendor/deltachat/turn): \(what)")
        case .supervisor(imapEnabled: false):
            DoctorStep(
                service: "turn", step: "credential", verdict: .pass,
                detail: "minted by the supervisor (IMAP is off): \(what)")
        case .supervisor(imapEnabled: true):
            DoctorStep(
                service: "turn", step: "credential", verdict: .warn,
                detail: "IMAP handed out none (see the imap steps): minted by the supervisor instead: \(what)",
                cause: .discoveryMismatch)
        }
    }

    public func run() -> [DoctorStep] {
        let log = StepLog(service: "turn", host: host)
        log.classify = { step, error in
            if step.hasPrefix("relay") { return error.cause == .noAnswer ? .relayUnreachable : error.cause }
            return StepLog.cause(of: error, host: host)
        }
        let name = "\(host):\(port)"
        log.run("binding udp", timeout: timeout) { deadline throws(NetError) in
            let client = try TURNClient.udp(host: host, port: port)
            return try binding(client, deadline: deadline, name: name)
        }
        log.run("binding tcp", timeout: timeout) { deadline throws(NetError) in
            let client = TURNClient.stream(try Socket.connect(host: host, port: port, deadline: deadline))
            return try binding(client, deadline: deadline, name: name)
        }
        guard let credential else {
            log.fail("credential", "neither IMAP nor the supervisor handed out a TURN credential", cause: .notRunning)
            return log.steps
        }
        log.steps.append(credentialStep(credential))

        var allocations: [TURNClient] = []
        defer { allocations.forEach { $0.release() } }
        let first = log.run("allocate udp", timeout: timeout) { deadline throws(NetError) in
            let client = try TURNClient.udp(host: host, port: port)
            return try allocate(client, deadline: deadline)
        }
        if let first { allocations.append(first) }
        log.run("allocate tcp", timeout: timeout) { deadline throws(NetError) in
            let client = TURNClient.stream(try Socket.connect(host: host, port: port, deadline: deadline))
            let outcome = try allocate(client, deadline: deadline)
            allocations.append(outcome.value)
            return Outcome(value: (), detail: outcome.detail)
        }
        if let tlsPort {
            log.run("allocate tls", timeout: timeout) { deadline throws(NetError) in
                let socket = try Socket.connect(host: host, port: tlsPort, deadline: deadline)
                let tls = try TLSStream(over: socket, serverName: host, deadline: deadline)
                let outcome = try allocate(TURNClient.stream(tls), deadline: deadline)
                allocations.append(outcome.value)
                var detail = outcome.detail + " on \(host):\(tlsPort)"
                var verdict = DoctorStep.Verdict.pass
                var cause: Cause?
                if let certificate = tls.certificate {
                    let (v, text, c) = certificate.verdict(name: host)
                    if v != .pass { (verdict, cause, detail) = (v == .fail ? .warn : v, c, detail + "; " + text) }
                }
                return Outcome(value: (), detail: detail, verdict: verdict, cause: cause)
            }
        }
        guard let first else {
            log.skip("relay range", "needs an allocation over UDP")
            log.skip("relay round trip", "needs an allocation over UDP")
            return log.steps
        }
        log.run("relay range", timeout: timeout) { deadline throws(NetError) in
            try relayRange(first, deadline: deadline)
        }
        let second = log.run("allocate udp (peer)", timeout: timeout) { deadline throws(NetError) in
            try allocate(TURNClient.udp(host: host, port: port), deadline: deadline)
        }
        guard let second else {
            log.skip("relay round trip", "needs a second allocation")
            return log.steps
        }
        allocations.append(second)
        log.run("relay round trip", timeout: timeout) { deadline throws(NetError) in
            try relay(first, second, deadline: deadline)
        }
        return log.steps
    }

    private func binding(_ client: TURNClient, deadline: Deadline, name: String) throws(NetError) -> Outcome<Void> {
        defer { client.close() }
        let start = ContinuousClock.now
        let answer = try client.request(
            STUNMessage(type: .bindingRequest, transactionID: .random()), deadline: deadline)
        guard answer.type == .bindingSuccess, let mapped = answer.xorMappedAddress else {
            throw .protocolError("answer to Binding: \(answer.type)")
        }
        return Outcome(
            value: (), detail: "\(name) sees us as \(mapped)",
            verdict: .pass, cause: nil
        ).timed(since: start)
    }

    private func allocate(_ client: TURNClient, deadline: Deadline) throws(NetError) -> Outcome<TURNClient> {
        guard let credential else { throw .protocolError("no credential") }
        do {
            let relayed = try client.allocate(
                username: credential.username, password: credential.password, deadline: deadline)
            return Outcome(value: client, detail: "relayed address \(relayed)")
        } catch .authentication(let reason) {
            throw .authentication(
                source == .imap
                    ? "\(reason): TURN refuses the credential IMAP hands out to clients (made with a secret TURN does not have, or expired)"
                    : "\(reason): TURN refuses the credential the supervisor minted")
        }
    }

    /// A peer outside TURN (a plain UDP socket on this host) and the allocation's relayed address, a packet
    /// each way: the packets cross the network stack at the relayed port, as those of a peer elsewhere do.
    private func relayRange(_ allocation: TURNClient, deadline: Deadline) throws(NetError) -> Outcome<Void> {
        guard let relayed = allocation.relayed else { throw .protocolError("no relayed address") }
        let peer = try Socket.udp(try Endpoint.resolve(relayed.host, port: relayed.port, datagram: true)[0])
        defer { peer.close() }
        guard let own = peer.localEndpoint, let peerAddress = STUNAddress(host: own.host, port: own.port) else {
            throw .system("no local address for the peer socket")
        }
        try allocation.createPermission(peerAddress, deadline: deadline)
        let start = ContinuousClock.now
        let inbound = Crypto.randomBytes(32)
        try peer.write(inbound, deadline: deadline)
        let (source, data) = try allocation.receiveData(deadline: deadline, what: "from \(peerAddress) to \(relayed)")
        guard source == peerAddress, data == inbound else {
            throw .protocolError("relayed data from \(source) differs")
        }
        let outbound = Crypto.randomBytes(32)
        try allocation.send(outbound, to: peerAddress, deadline: deadline)
        let answer: [UInt8]
        do {
            answer = try peer.read(deadline: deadline)
        } catch .timeout {
            throw .timeout("the relay: nothing relayed from \(relayed) to \(peerAddress)")
        }
        guard answer == outbound else { throw .protocolError("the peer got other data from \(relayed)") }
        return Outcome(value: (), detail: "peer \(peerAddress) <-> relayed \(relayed), both ways").timed(since: start)
    }

    /// Permissions both ways, then a packet from each allocation to the other's relayed address (the server
    /// passes these between its own allocations internally, as in a relay-only call between two of its clients).
    private func relay(_ a: TURNClient, _ b: TURNClient, deadline: Deadline) throws(NetError) -> Outcome<Void> {
        guard let aAddress = a.relayed, let bAddress = b.relayed else { throw .protocolError("no relayed address") }
        try a.createPermission(bAddress, deadline: deadline)
        try b.createPermission(aAddress, deadline: deadline)
        let start = ContinuousClock.now
        for (from, to, fromAddress, toAddress) in [(a, b, aAddress, bAddress), (b, a, bAddress, aAddress)] {
            let payload = Crypto.randomBytes(32)
            try from.send(payload, to: toAddress, deadline: deadline)
            let (peer, data) = try to.receiveData(deadline: deadline, what: "\(fromAddress) to \(toAddress)")
            guard data == payload, peer == fromAddress else {
                throw .protocolError("relayed data from \(peer) does not match what \(fromAddress) sent")
            }
        }
        return Outcome(value: (), detail: "\(aAddress) <-> \(bAddress), both ways").timed(since: start)
    }
}

extension Outcome {
    /// Puts the round trip time into the detail (the step's own time includes connecting).
    func timed(since start: ContinuousClock.Instant) -> Outcome {
        var copy = self
        copy.detail += String(format: ", round trip %.1f ms", milliseconds(since: start))
        return copy
    }
}

/// A TURN client over UDP (with retransmissions) or a stream (TCP, TLS) with RFC 8656 §11.5 framing.
final class TURNClient {
    private let datagram: Socket?
    private let reader: StreamReader?
    private var key: [UInt8]?
    private var username = ""
    private var realm = ""
    private var nonce = ""
    private(set) var relayed: STUNAddress?
    /// Indications that arrived while waiting for a response.
    private var pending: [STUNMessage] = []

    private init(datagram: Socket?, reader: StreamReader?) {
        (self.datagram, self.reader) = (datagram, reader)
    }

    static func udp(host: String, port: UInt16) throws(NetError) -> TURNClient {
        let endpoints = try Endpoint.resolve(host, port: port, datagram: true)
        return TURNClient(datagram: try Socket.udp(endpoints[0]), reader: nil)
    }

    static func stream(_ stream: any ByteStream) -> TURNClient {
        TURNClient(datagram: nil, reader: StreamReader(stream))
    }

    func close() {
        datagram?.close()
        reader?.stream.close()
    }

    private func sendRaw(_ bytes: [UInt8], deadline: Deadline) throws(NetError) {
        if let datagram {
            try datagram.write(bytes, deadline: deadline)
        } else {
            try reader!.stream.write(bytes, deadline: deadline)
        }
    }

    /// The next message (a datagram, or a frame of the stream); ChannelData is skipped.
    private func receive(deadline: Deadline) throws(NetError) -> STUNMessage {
        while true {
            let bytes: [UInt8]
            if let datagram {
                bytes = try datagram.read(deadline: deadline)
            } else {
                let head = try reader!.read(exactly: 4, deadline: deadline)
                let word = head.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                guard let length = TURNStreamFraming.frameLength(first4: word) else {
                    throw .protocolError("not a TURN stream")
                }
                bytes = head + (try reader!.read(exactly: length - 4, deadline: deadline))
            }
            guard bytes.count >= 20, bytes[0] & 0xC0 == 0 else { continue }
            do {
                return try STUNMessage(parsing: bytes)
            } catch {
                throw .protocolError("unparsable STUN message: \(error)")
            }
        }
    }

    /// Sends `message` and returns the response with its transaction ID (UDP: resent every 500 ms).
    func request(_ message: STUNMessage, integrity: Bool = false, deadline: Deadline) throws(NetError) -> STUNMessage {
        let bytes: [UInt8]
        do {
            bytes = try message.encoded(integrity: integrity ? key.map { .sha1(key: $0) } : nil, fingerprint: true)
        } catch {
            throw .protocolError("cannot encode \(message.type): \(error)")
        }
        try sendRaw(bytes, deadline: deadline)
        while true {
            let answer: STUNMessage
            if datagram != nil {
                let resend = Deadline(in: .milliseconds(500))
                do {
                    answer = try receive(deadline: resend.end < deadline.end ? resend : deadline)
                } catch .timeout(let what) {
                    if deadline.expired { throw .timeout(what) }
                    try sendRaw(bytes, deadline: deadline)
                    continue
                }
            } else {
                answer = try receive(deadline: deadline)
            }
            if answer.transactionID == message.transactionID { return answer }
            if answer.type.messageClass == .indication { pending.append(answer) }
        }
    }

    /// An authenticated request: adds the credential attributes, and retries once on 401 or 438 with the
    /// realm and nonce the server gave.
    func authenticated(
        _ method: STUNMethod, _ attributes: [STUNAttribute], deadline: Deadline
    ) throws(NetError) -> STUNMessage {
        for _ in 0..<3 {
            var all = attributes
            if key != nil { all += [.username(username), .realm(realm), .nonce(nonce)] }
            let answer = try request(
                STUNMessage(method: method, class: .request, transactionID: .random(), attributes: all),
                integrity: key != nil, deadline: deadline)
            if answer.type.messageClass == .successResponse { return answer }
            guard let error = answer.errorCode else { throw .protocolError("\(method): \(answer.type)") }
            let retry = (error.code == 401 && key == nil) || error.code == 438
            guard retry, let realm = answer.realm, let nonce = answer.nonce, let password = self.password else {
                throw error.code == 401 || error.code == 441
                    ? .authentication("credential refused (\(error))") : .protocolError("\(method) refused: \(error)")
            }
            (self.realm, self.nonce) = (realm, nonce)
            key = STUNCredentials.longTermKey(username: username, realm: realm, password: password)
        }
        throw .protocolError("\(method): the server keeps asking for credentials")
    }

    private var password: String?

    func allocate(username: String, password: String, deadline: Deadline) throws(NetError) -> STUNAddress {
        (self.username, self.password) = (username, password)
        let answer = try authenticated(.allocate, [.requestedTransport(17)], deadline: deadline)
        guard let relayed = answer.xorRelayedAddresses.first else { throw .protocolError("no relayed address") }
        self.relayed = relayed
        return relayed
    }

    func createPermission(_ peer: STUNAddress, deadline: Deadline) throws(NetError) {
        _ = try authenticated(.createPermission, [.xorPeerAddress(peer)], deadline: deadline)
    }

    func send(_ data: [UInt8], to peer: STUNAddress, deadline: Deadline) throws(NetError) {
        let indication = STUNMessage(
            type: .sendIndication, transactionID: .random(), attributes: [.xorPeerAddress(peer), .data(data)])
        do {
            try sendRaw(try indication.encoded(), deadline: deadline)
        } catch let error as NetError {
            throw error
        } catch {
            throw .protocolError("cannot encode a Send indication")
        }
    }

    func receiveData(deadline: Deadline, what: String) throws(NetError) -> (STUNAddress, [UInt8]) {
        while true {
            let message: STUNMessage
            do {
                message = pending.isEmpty ? try receive(deadline: deadline) : pending.removeFirst()
            } catch .timeout {
                throw .timeout("the relay: nothing relayed \(what)")
            }
            if message.type == .dataIndication, let peer = message.xorPeerAddresses.first, let data = message.data {
                return (peer, data)
            }
        }
    }

    /// Deletes the allocation (Refresh with lifetime 0), best effort, and closes.
    func release() {
        if relayed != nil {
            _ = try? authenticated(.refresh, [.lifetime(0)], deadline: Deadline(in: .milliseconds(500)))
        }
        close()
    }
}
