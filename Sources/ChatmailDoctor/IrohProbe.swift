import ChatmailCrypto
import IrohCore
import NIOCore

/// The iroh checks, as Delta Chat's iroh 0.35 makes them: the captive-portal `/generate_204`, and two relay
/// connections (`Upgrade: iroh derp http`, ClientInfo signed with a fresh Ed25519 key) that send a packet to
/// each other through the relay.
public struct IrohProbe {
    /// The relay URL's parts: `http(s)://host:port`.
    public var host: String
    public var port: UInt16
    public var tls: Bool
    public var timeout: Duration

    public init(host: String, port: UInt16, tls: Bool, timeout: Duration) {
        (self.host, self.port, self.tls, self.timeout) = (host, port, tls, timeout)
    }

    public func run() -> [DoctorStep] {
        let log = StepLog(service: "iroh", host: host)
        let base = "\(tls ? "https" : "http")://\(host):\(port)"
        log.run("generate_204", timeout: timeout) { deadline throws(NetError) in
            let reader = try connect(deadline: deadline)
            defer { reader.stream.close() }
            let challenge = "ts_" + Crypto.base64URL(Crypto.randomBytes(9))
            let head = try request(
                reader,
                "GET /generate_204 HTTP/1.1\r\nHost: \(host)\r\nX-Tailscale-Challenge: \(challenge)\r\n"
                    + "Connection: close\r\n\r\n", deadline: deadline)
            guard head.status == 204 else { throw .protocolError("\(base)/generate_204 answered \(head.status)") }
            guard head.headers["x-tailscale-response"] == "response \(challenge)" else {
                throw .protocolError("204 without the challenge response")
            }
            return Outcome(value: (), detail: "\(base)/generate_204: 204 with the challenge answered")
        }
        log.run("relay round trip", timeout: timeout) { deadline throws(NetError) in
            let a = try RelayConnection(probe: self, deadline: deadline)
            let b = try RelayConnection(probe: self, deadline: deadline)
            defer {
                a.reader.stream.close()
                b.reader.stream.close()
            }
            let start = ContinuousClock.now
            for (from, to) in [(a, b), (b, a)] {
                let packet = Crypto.randomBytes(48)
                try from.send(.sendPacket(destination: to.key, packet: ByteBuffer(bytes: packet)), deadline: deadline)
                while true {
                    let frame = try to.receive(deadline: deadline)
                    if case .recvPacket(let source, let payload) = frame {
                        guard source == from.key, Array(payload.readableBytesView) == packet else {
                            throw .protocolError("the relay delivered another packet")
                        }
                        break
                    }
                }
            }
            return Outcome(value: (), detail: "\(base)/relay (iroh 0.35): a packet each way between two clients")
                .timed(since: start)
        }
        return log.steps
    }

    fileprivate func connect(deadline: Deadline) throws(NetError) -> StreamReader {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        guard tls else { return StreamReader(socket) }
        return StreamReader(try TLSStream(over: socket, serverName: host, alpn: ["http/1.1"], deadline: deadline))
    }

    /// Sends a request and reads the response head (status and lower-cased headers).
    fileprivate func request(_ reader: StreamReader, _ text: String, deadline: Deadline) throws(NetError) -> (
        status: Int, headers: [String: String]
    ) {
        try reader.stream.write(Array(text.utf8), deadline: deadline)
        let statusLine = try reader.readLine(deadline: deadline)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw .protocolError("not HTTP: \(statusLine.prefix(60))")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try reader.readLine(deadline: deadline)
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingSpaces
            }
        }
        return (status, headers)
    }
}

/// One family-L client connection.
private final class RelayConnection {
    let reader: StreamReader
    let key: EndpointKey
    private var nextPing: UInt64 = 1

    init(probe: IrohProbe, deadline: Deadline) throws(NetError) {
        reader = try probe.connect(deadline: deadline)
        let head = try probe.request(
            reader, "GET /relay HTTP/1.1\r\nHost: \(probe.host)\r\nUpgrade: iroh derp http\r\n\r\n", deadline: deadline)
        guard head.status == 101 else { throw .protocolError("/relay answered \(head.status), not 101") }
        let seed = Crypto.randomBytes(32)
        let info: LegacyProtocol.ClientFrame
        do {
            info = try LegacyProtocol.clientInfo(privateKey: seed)
        } catch {
            throw .system("cannot sign ClientInfo: \(error)")
        }
        guard case .clientInfo(let clientInfo) = info else { throw .system("no ClientInfo") }
        key = clientInfo.key
        try send(info, deadline: deadline)
        // A ping answered means the relay has read ClientInfo and registered this key.
        let ping = nextPing
        try send(.ping(ping), deadline: deadline)
        while true {
            if case .pong(ping) = try receive(deadline: deadline) { break }
        }
    }

    func send(_ frame: LegacyProtocol.ClientFrame, deadline: Deadline) throws(NetError) {
        var buffer = ByteBuffer()
        LegacyProtocol.encode(frame, streamHeader: true, into: &buffer)
        try reader.stream.write(Array(buffer.readableBytesView), deadline: deadline)
    }

    func receive(deadline: Deadline) throws(NetError) -> LegacyProtocol.ServerFrame {
        let head = try reader.read(exactly: LegacyProtocol.headerLength, deadline: deadline)
        let length = Int(head[1...4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard length <= LegacyProtocol.maxFrameSize else { throw .protocolError("frame of \(length) bytes") }
        let payload = try reader.read(exactly: length, deadline: deadline)
        do {
            return try LegacyProtocol.decodeServerFrame(type: head[0], payload: ByteBuffer(bytes: payload))
        } catch {
            throw .protocolError("relay frame: \(error)")
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
