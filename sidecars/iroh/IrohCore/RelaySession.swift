import NIOCore

/// The protocol family and version a connection speaks, fixed by its upgrade request.
public enum RelayFamily: Hashable, Sendable {
    /// iroh 0.35 (family L), over the raw `iroh derp http` stream or over WebSocket messages.
    case legacy
    /// iroh-relay v1 / v2 (family W), over WebSocket.
    case relay(RelayProtocol.Version)

    /// Packets never cross this boundary: each family has its own registry.
    public var registry: Self {
        switch self {
        case .legacy: .legacy
        case .relay: .relay(.v2)
        }
    }
}

/// What a relayed packet carries, per family; forwarded verbatim.
public enum RelayPayload: Equatable, Sendable {
    /// A family-L packet (a bundle of length-prefixed datagrams, opaque here).
    case legacy(ByteBuffer)
    /// Family-W datagrams with their ECN and segment size.
    case datagrams(RelayProtocol.Datagrams)

    /// Payload bytes, for counters.
    public var byteCount: Int {
        switch self {
        case .legacy(let packet): packet.readableBytes
        case .datagrams(let datagrams): datagrams.contents.readableBytes
        }
    }
}

/// A message to a client, independent of its family; `RelaySession.encode` writes it in the family's frames.
public enum ServerMessage: Equatable, Sendable {
    case challenge([UInt8])
    case confirmAuth
    case denyAuth(String)
    case packet(source: EndpointKey, RelayPayload)
    case gone(EndpointKey)
    case ping(UInt64)
    case pong(UInt64)
    case status(RelayProtocol.Status)
}

/// One connection's protocol state after the upgrade: the handshake, then decoded client frames turned into
/// actions. Pure: the server supplies the random challenge and carries out the actions.
public struct RelaySession: Sendable {
    public enum Action: Equatable, Sendable {
        /// Nothing to do (a frame that is ignored, such as NotePreferred).
        case none
        /// The client proved its key: register it (family W also sends `confirmAuth`).
        case authenticated(EndpointKey)
        /// Send `packet` to the connection registered for `destination`, from this session's key.
        case forward(to: EndpointKey, RelayPayload)
        /// Answer a client ping at once.
        case pong(UInt64)
        /// A pong to the server's ping.
        case pongReceived(UInt64)
    }

    public let family: RelayFamily
    private let challenge: [UInt8]
    public private(set) var key: EndpointKey?

    /// A session for `family`; `challenge` (16 random bytes) is used by family W only.
    public init(family: RelayFamily, challenge: [UInt8]) {
        self.family = family
        self.challenge = challenge
    }

    /// What the server sends first: the challenge for family W, nothing for family L.
    public var greeting: ServerMessage? {
        if case .relay = family { return .challenge(challenge) }
        return nil
    }

    /// The reason sent to a family-W client whose authentication failed, before closing.
    public static func denial(for error: RelayError) -> String {
        if case .authenticationFailed(let why) = error, why == "signature invalid" { return why }
        return "authentication failed"
    }

    /// Handles one WebSocket message (either family).
    public mutating func receive(message: ByteBuffer) throws(RelayError) -> Action {
        switch family {
        case .legacy:
            let (type, payload) = try LegacyProtocol.splitMessage(message)
            return try receive(legacyType: type, payload: payload)
        case .relay:
            return try handle(RelayProtocol.decodeClientFrame(message))
        }
    }

    /// Handles one family-L frame (from the stream framing or a WebSocket message).
    public mutating func receive(legacyType type: UInt8, payload: ByteBuffer) throws(RelayError) -> Action {
        let frame = try LegacyProtocol.decodeClientFrame(type: type, payload: payload)
        guard key != nil else {
            guard case .clientInfo(let info) = frame else { throw .notAuthenticated }
            try info.verify()
            self.key = info.key
            return .authenticated(info.key)
        }
        switch frame {
        case .clientInfo: throw .unexpectedFrameType(UInt64(type))
        case .sendPacket(let destination, let packet):
            return .forward(to: destination, .legacy(packet))
        case .notePreferred: return .none
        case .ping(let data): return .pong(data)
        case .pong(let data): return .pongReceived(data)
        }
    }

    private mutating func handle(_ frame: RelayProtocol.ClientFrame) throws(RelayError) -> Action {
        guard key != nil else {
            guard case .clientAuth(let claimed, let signature) = frame else { throw .notAuthenticated }
            guard RelayProtocol.verifyChallenge(challenge, key: claimed, signature: signature) else {
                throw .authenticationFailed("signature invalid")
            }
            key = claimed
            return .authenticated(claimed)
        }
        switch frame {
        case .clientAuth: throw .unexpectedFrameType(RelayProtocol.FrameType.clientAuth.rawValue)
        case .datagrams(let destination, let datagrams): return .forward(to: destination, .datagrams(datagrams))
        case .ping(let data): return .pong(data)
        case .pong(let data): return .pongReceived(data)
        }
    }

    /// Appends `message` in this family's encoding; false (nothing written) when the family or version has no such
    /// frame: a challenge to family L, or a status the version cannot carry.
    @discardableResult
    public func encode(_ message: ServerMessage, streamHeader: Bool, into buffer: inout ByteBuffer) -> Bool {
        switch family {
        case .legacy:
            let frame: LegacyProtocol.ServerFrame
            switch message {
            case .packet(let source, .legacy(let packet)): frame = .recvPacket(source: source, packet: packet)
            case .gone(let key): frame = .peerGone(key)
            case .ping(let data): frame = .ping(data)
            case .pong(let data): frame = .pong(data)
            case .challenge, .confirmAuth, .denyAuth, .packet(_, .datagrams), .status: return false
            }
            LegacyProtocol.encode(frame, streamHeader: streamHeader, into: &buffer)
        case .relay(let version):
            let frame: RelayProtocol.ServerFrame
            switch message {
            case .challenge(let challenge): frame = .serverChallenge(challenge)
            case .confirmAuth: frame = .serverConfirmsAuth
            case .denyAuth(let reason): frame = .serverDeniesAuth(reason)
            case .packet(let source, .datagrams(let datagrams)): frame = .datagrams(source: source, datagrams)
            case .packet(_, .legacy): return false
            case .gone(let key): frame = .endpointGone(key)
            case .ping(let data): frame = .ping(data)
            case .pong(let data): frame = .pong(data)
            case .status(let status) where version == .v2: frame = .status(status)
            case .status(.sameEndpointIdConnected): frame = .health(Self.duplicateHealthText)
            case .status: return false
            }
            RelayProtocol.encode(frame, into: &buffer)
        }
        return true
    }

    /// The v1 Health text iroh sends to a connection that another one with the same key replaced.
    static let duplicateHealthText =
        "Another endpoint connected with the same endpoint id. No more messages will be received."
}
