import ChatmailCrypto
import IrohCore
import NIOCore

/// The iroh checks: the captive-portal `/generate_204`, and for each protocol generation two relay connections
/// with fresh Ed25519 keys that send a packet to each other through the relay: iroh 0.35's (Delta Chat's today:
/// `Upgrade: iroh derp http`, a signed ClientInfo) and iroh 1.x's (a WebSocket with the `iroh-relay-v2`
/// sub-protocol and the challenge handshake), each its own step.
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
            // Each generation's challenge header (0.35: X-Tailscale-, 1.x: X-Iroh-), both in one request.
            let challenges = [("Tailscale", "iroh 0.35"), ("Iroh", "iroh 1.x")].map { name, generation in
                (name, generation, "ts_" + Crypto.base64URL(Crypto.randomBytes(9)))
            }
            let head = try reader.request(
                "GET /generate_204 HTTP/1.1\r\nHost: \(host)\r\n"
                    + challenges.map { "X-\($0.0)-Challenge: \($0.2)\r\n" }.joined() + "Connection: close\r\n\r\n",
                deadline: deadline)
            guard head.status == 204 else { throw .protocolError("\(base)/generate_204 answered \(head.status)") }
            for (name, generation, challenge) in challenges
            where head.headers["x-\(name.lowercased())-response"] != "response \(challenge)" {
                throw .protocolError("204 without X-\(name)-Response to the challenge (\(generation))")
            }
            return Outcome(
                value: (), detail: "\(base)/generate_204: 204 with X-Tailscale-Response and X-Iroh-Response answered")
        }
        log.run("relay round trip 0.35", timeout: timeout) { deadline throws(NetError) in
            try roundTrip(base: base, deadline: deadline) { deadline throws(NetError) in
                try RelayConnection(probe: self, deadline: deadline)
            }
        }
        log.run("relay round trip 1.x", timeout: timeout) { deadline throws(NetError) in
            try roundTrip(base: base, deadline: deadline) { deadline throws(NetError) in
                try WebSocketRelayConnection(probe: self, deadline: deadline)
            }
        }
        return log.steps
    }

    /// Two clients of one generation, a packet from each to the other through the relay.
    private func roundTrip<Connection: RelayTestConnection>(
        base: String, deadline: Deadline, _ connect: (Deadline) throws(NetError) -> Connection
    ) throws(NetError) -> Outcome<Void> {
        let a = try connect(deadline)
        defer { a.reader.stream.close() }
        let b = try connect(deadline)
        defer { b.reader.stream.close() }
        let start = ContinuousClock.now
        for (from, to) in [(a, b), (b, a)] {
            let packet = Crypto.randomBytes(48)
            try from.sendPacket(packet, to: to.key, deadline: deadline)
            let (source, received) = try to.receivePacket(deadline: deadline)
            guard source == from.key, received == packet else {
                throw .protocolError("the relay delivered another packet")
            }
        }
        return Outcome(value: (), detail: "\(base)/relay (\(a.generation)): a packet each way between two clients")
            .timed(since: start)
    }

    fileprivate func connect(deadline: Deadline) throws(NetError) -> StreamReader {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        guard tls else { return StreamReader(socket) }
        return StreamReader(try TLSStream(over: socket, serverName: host, alpn: ["http/1.1"], deadline: deadline))
    }
}

/// A relay client connection of either generation, for `roundTrip`.
private protocol RelayTestConnection: AnyObject {
    var reader: StreamReader { get }
    var key: EndpointKey { get }
    /// The protocol, for the step's line.
    var generation: String { get }
    func sendPacket(_ packet: [UInt8], to destination: EndpointKey, deadline: Deadline) throws(NetError)
    /// The next packet relayed to this connection (other frames skipped).
    func receivePacket(deadline: Deadline) throws(NetError) -> (source: EndpointKey, packet: [UInt8])
}

/// One family-L client connection.
private final class RelayConnection: RelayTestConnection {
    let generation = "iroh 0.35"
    let reader: StreamReader
    let key: EndpointKey
    private var nextPing: UInt64 = 1

    init(probe: IrohProbe, deadline: Deadline) throws(NetError) {
        reader = try probe.connect(deadline: deadline)
        let head = try reader.request(
            "GET /relay HTTP/1.1\r\nHost: \(probe.host)\r\nUpgrade: iroh derp http\r\n\r\n", deadline: deadline)
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

    func sendPacket(_ packet: [UInt8], to destination: EndpointKey, deadline: Deadline) throws(NetError) {
        try send(.sendPacket(destination: destination, packet: ByteBuffer(bytes: packet)), deadline: deadline)
    }

    func receivePacket(deadline: Deadline) throws(NetError) -> (source: EndpointKey, packet: [UInt8]) {
        while true {
            if case .recvPacket(let source, let packet) = try receive(deadline: deadline) {
                return (source, Array(packet.readableBytesView))
            }
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

/// One family-W client connection, as iroh 1.x opens it: a WebSocket (RFC 6455, client frames masked) on
/// `/relay` offering `iroh-relay-v2, iroh-relay-v1`, the server's challenge signed, then relay frames, one per
/// binary message.
private final class WebSocketRelayConnection: RelayTestConnection {
    let reader: StreamReader
    let key: EndpointKey
    /// The sub-protocol the relay chose.
    let subprotocol: String
    private var message: [UInt8] = []

    init(probe: IrohProbe, deadline: Deadline) throws(NetError) {
        reader = try probe.connect(deadline: deadline)
        let nonce = Crypto.base64(Crypto.randomBytes(16))
        let head = try reader.request(
            "GET /relay HTTP/1.1\r\nHost: \(probe.host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(nonce)\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Protocol: iroh-relay-v2, iroh-relay-v1\r\n\r\n", deadline: deadline)
        guard head.status == 101 else { throw .protocolError("/relay answered \(head.status) to a WebSocket, not 101") }
        let accept = Crypto.base64(Crypto.sha1(Array((nonce + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)))
        guard head.headers["sec-websocket-accept"] == accept else {
            throw .protocolError("the 101 has no valid Sec-WebSocket-Accept")
        }
        guard let chosen = head.headers["sec-websocket-protocol"], RelayProtocol.Version(subprotocol: chosen) != nil
        else { throw .protocolError("the 101 names no iroh-relay sub-protocol (iroh 1.x gives up: BadVersionHeader)") }
        subprotocol = chosen
        // The handshake: the first frame is the challenge; the signed answer is confirmed or denied.
        guard case .serverChallenge(let challenge) = try Self.receive(reader, into: &message, deadline: deadline) else {
            throw .protocolError("the relay's first frame is not ServerChallenge")
        }
        let auth: RelayProtocol.ClientFrame
        do {
            auth = try RelayProtocol.clientAuth(privateKey: Crypto.randomBytes(32), challenge: challenge)
        } catch {
            throw .system("cannot sign the challenge: \(error)")
        }
        guard case .clientAuth(let key, _) = auth else { throw .system("no ClientAuth") }
        self.key = key
        try send(auth, deadline: deadline)
        switch try receive(deadline: deadline) {
        case .serverConfirmsAuth: break
        case .serverDeniesAuth(let reason): throw .authentication("the relay denied the key: \(reason)")
        case let other: throw .protocolError("answer to ClientAuth: \(other)")
        }
        // A ping answered means the relay has registered this key.
        try send(.ping(1), deadline: deadline)
        while true {
            if case .pong(1) = try receive(deadline: deadline) { break }
        }
    }

    var generation: String { "iroh 1.x, \(subprotocol)" }

    func sendPacket(_ packet: [UInt8], to destination: EndpointKey, deadline: Deadline) throws(NetError) {
        let datagram = RelayProtocol.Datagrams(ecn: 0, segmentSize: nil, contents: ByteBuffer(bytes: packet))
        try send(.datagrams(destination: destination, datagram), deadline: deadline)
    }

    func receivePacket(deadline: Deadline) throws(NetError) -> (source: EndpointKey, packet: [UInt8]) {
        while true {
            if case .datagrams(let source, let datagrams) = try receive(deadline: deadline) {
                return (source, Array(datagrams.contents.readableBytesView))
            }
        }
    }

    func send(_ frame: RelayProtocol.ClientFrame, deadline: Deadline) throws(NetError) {
        var buffer = ByteBuffer()
        RelayProtocol.encode(frame, into: &buffer)
        try Self.write(reader, opcode: 2, Array(buffer.readableBytesView), deadline: deadline)
    }

    func receive(deadline: Deadline) throws(NetError) -> RelayProtocol.ServerFrame {
        try Self.receive(reader, into: &message, deadline: deadline)
    }

    /// One masked, final WebSocket frame.
    private static func write(_ reader: StreamReader, opcode: UInt8, _ payload: [UInt8], deadline: Deadline)
        throws(NetError)
    {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        let mask = Crypto.randomBytes(4)
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try reader.stream.write(frame, deadline: deadline)
    }

    /// The next relay frame: binary messages (continuations joined) decoded; text and pongs skipped, pings
    /// answered, a close frame an error.
    private static func receive(_ reader: StreamReader, into message: inout [UInt8], deadline: Deadline)
        throws(NetError) -> RelayProtocol.ServerFrame
    {
        while true {
            let head = try reader.read(exactly: 2, deadline: deadline)
            let (final, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0F)
            guard head[1] & 0x80 == 0 else { throw .protocolError("the relay masked a WebSocket frame") }
            var length = Int(head[1] & 0x7F)
            if length >= 126 {
                let bytes = try reader.read(exactly: length == 126 ? 2 : 8, deadline: deadline)
                guard bytes.count == 2 || bytes[0] == 0 else { throw .protocolError("WebSocket frame too large") }
                length = bytes.reduce(0) { $0 << 8 | Int($1) }
            }
            guard length + message.count <= 1 << 20 else { throw .protocolError("WebSocket message over 1 MiB") }
            let payload = try reader.read(exactly: length, deadline: deadline)
            switch opcode {
            case 0, 2:
                message += payload
                guard final else { continue }
                defer { message = [] }
                do {
                    return try RelayProtocol.decodeServerFrame(ByteBuffer(bytes: message))
                } catch {
                    throw .protocolError("relay frame: \(error)")
                }
            case 8: throw .closed("the relay")
            case 9: try write(reader, opcode: 10, payload, deadline: deadline)
            case 1, 10: continue
            default: throw .protocolError("WebSocket opcode \(opcode)")
            }
        }
    }
}
