import ChatmailCrypto
import NIOCore

/// Family W: the `iroh-relay-v1` / `iroh-relay-v2` WebSocket protocol of iroh ≥ 0.91 and 1.x. One binary message
/// is one frame: a QUIC-varint type, then a body of at most 65,536 bytes.
public enum RelayProtocol {
    /// The negotiated sub-protocol. v2 replaces Health (11) with Status (13).
    public enum Version: Int, Comparable, Sendable, CaseIterable {
        case v1 = 1
        case v2 = 2

        public var subprotocol: String { "iroh-relay-v\(rawValue)" }

        public init?(subprotocol: some StringProtocol) {
            guard let version = Self.allCases.first(where: { $0.subprotocol == subprotocol }) else { return nil }
            self = version
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public enum FrameType: UInt64, Sendable {
        case serverChallenge = 0
        case clientAuth = 1
        case serverConfirmsAuth = 2
        case serverDeniesAuth = 3
        case clientToRelayDatagram = 4
        case clientToRelayDatagramBatch = 5
        case relayToClientDatagram = 6
        case relayToClientDatagramBatch = 7
        case endpointGone = 8
        case ping = 9
        case pong = 10
        case health = 11
        case restarting = 12
        case status = 13
    }

    /// The largest frame body after the type (`MAX_PACKET_SIZE`).
    public static let maxBodySize = 1 << 16
    public static let challengeLength = 16
    /// The BLAKE3 derive-key context of the challenge signature.
    public static let challengeSignatureContext = "iroh-relay handshake v1 challenge signature"

    /// `Status` values (v2 only).
    public enum Status: UInt8, Sendable {
        case healthy = 0
        case sameEndpointIdConnected = 1
        case rateLimited = 2
    }

    /// One datagram or a GSO-style batch: ECN bits, the segment size (nil for a single datagram) and the contents,
    /// forwarded verbatim.
    public struct Datagrams: Equatable, Sendable {
        public var ecn: UInt8
        public var segmentSize: UInt16?
        public var contents: ByteBuffer

        public init(ecn: UInt8, segmentSize: UInt16?, contents: ByteBuffer) {
            self.ecn = ecn
            self.segmentSize = segmentSize
            self.contents = contents
        }
    }

    public enum ClientFrame: Equatable, Sendable {
        case clientAuth(key: EndpointKey, signature: [UInt8])
        case datagrams(destination: EndpointKey, Datagrams)
        case ping(UInt64)
        case pong(UInt64)
    }

    public enum ServerFrame: Equatable, Sendable {
        case serverChallenge([UInt8])
        case serverConfirmsAuth
        case serverDeniesAuth(String)
        case datagrams(source: EndpointKey, Datagrams)
        case endpointGone(EndpointKey)
        case ping(UInt64)
        case pong(UInt64)
        case health(String)
        case restarting(reconnectInMilliseconds: UInt32, tryForMilliseconds: UInt32)
        case status(Status)
    }

    /// Decodes one WebSocket message from a client. Types a client must not send, bad layouts and oversized
    /// bodies are errors; an empty datagram is malformed (iroh clients never send one).
    public static func decodeClientFrame(_ message: ByteBuffer) throws(RelayError) -> ClientFrame {
        var body = message
        guard let rawType = body.readQUICVarint() else { throw .malformedFrame("missing frame type") }
        guard body.readableBytes <= maxBodySize else { throw .frameTooLarge(body.readableBytes) }
        switch FrameType(rawValue: rawType) {
        case .clientAuth:
            // postcard: key [u8; 32] ‖ signature as a byte string (varint length 64 ‖ 64 bytes).
            guard body.readableBytes == EndpointKey.length + 1 + Crypto.ed25519SignatureLength,
                let key = EndpointKey(reading: &body), body.readInteger(as: UInt8.self) == 64
            else { throw .authenticationFailed("bad ClientAuth") }
            return .clientAuth(key: key, signature: body.readBytes(length: 64)!)
        case .clientToRelayDatagram, .clientToRelayDatagramBatch:
            let batch = rawType == FrameType.clientToRelayDatagramBatch.rawValue
            guard let destination = EndpointKey(reading: &body), let ecn = body.readInteger(as: UInt8.self),
                ecn <= 3
            else { throw .malformedFrame("bad datagram header") }
            var segmentSize: UInt16?
            if batch {
                guard let size = body.readInteger(as: UInt16.self) else { throw .malformedFrame("bad batch header") }
                segmentSize = size
            }
            guard body.readableBytes > 0 else { throw .malformedFrame("empty datagram") }
            return .datagrams(destination: destination, Datagrams(ecn: ecn, segmentSize: segmentSize, contents: body))
        case .ping, .pong:
            guard body.readableBytes == 8, let data = body.readInteger(as: UInt64.self) else {
                throw .malformedFrame("Ping/Pong must be 8 bytes")
            }
            return rawType == FrameType.ping.rawValue ? .ping(data) : .pong(data)
        case .serverChallenge, .serverConfirmsAuth, .serverDeniesAuth, .relayToClientDatagram,
            .relayToClientDatagramBatch, .endpointGone, .health, .restarting, .status, nil:
            throw .unexpectedFrameType(rawType)
        }
    }

    /// Appends the message for `frame`. The caller sends only frames the version allows (see `allows`).
    public static func encode(_ frame: ServerFrame, into buffer: inout ByteBuffer) {
        func type(_ type: FrameType) { buffer.writeInteger(UInt8(type.rawValue)) }
        switch frame {
        case .serverChallenge(let challenge):
            type(.serverChallenge)
            buffer.writeBytes(challenge)
        case .serverConfirmsAuth:
            type(.serverConfirmsAuth)
        case .serverDeniesAuth(let reason):
            type(.serverDeniesAuth)
            buffer.writeLEB128(UInt64(reason.utf8.count))
            buffer.writeString(reason)
        case .datagrams(let source, let datagrams):
            writeDatagrams(
                datagrams, key: source, as: (.relayToClientDatagram, .relayToClientDatagramBatch), into: &buffer)
        case .endpointGone(let key):
            type(.endpointGone)
            key.write(to: &buffer)
        case .ping(let data):
            type(.ping)
            buffer.writeInteger(data)
        case .pong(let data):
            type(.pong)
            buffer.writeInteger(data)
        case .health(let text):
            type(.health)
            buffer.writeString(text)
        case .restarting(let reconnectIn, let tryFor):
            type(.restarting)
            buffer.writeMultipleIntegers(reconnectIn, tryFor)
        case .status(let status):
            type(.status)
            buffer.writeInteger(status.rawValue)
        }
    }

    /// A datagram frame either way: its type (`types.single`, or `types.batch` with a segment size), the other
    /// end's key, ECN, the segment size and the contents.
    static func writeDatagrams(
        _ datagrams: Datagrams, key: EndpointKey, as types: (single: FrameType, batch: FrameType),
        into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger(UInt8((datagrams.segmentSize == nil ? types.single : types.batch).rawValue))
        key.write(to: &buffer)
        buffer.writeInteger(datagrams.ecn)
        if let segmentSize = datagrams.segmentSize { buffer.writeInteger(segmentSize) }
        buffer.writeImmutableBuffer(datagrams.contents)
    }

    /// Whether a client of `version` accepts `frame`: Health only for v1, Status only for v2.
    public static func allows(_ frame: ServerFrame, version: Version) -> Bool {
        switch frame {
        case .health: version == .v1
        case .status: version == .v2
        default: true
        }
    }

    /// The 32 bytes a client signs to answer `challenge`: BLAKE3 derive_key over it.
    public static func challengeMessage(_ challenge: [UInt8]) -> [UInt8] {
        BLAKE3.deriveKey(context: challengeSignatureContext, material: challenge)
    }

    /// Whether `signature` by `key` answers `challenge`.
    public static func verifyChallenge(_ challenge: [UInt8], key: EndpointKey, signature: [UInt8]) -> Bool {
        Crypto.ed25519Verify(publicKey: key.bytes, signature: signature, message: challengeMessage(challenge))
    }
}

extension ByteBuffer {
    /// Reads a QUIC variable-length integer (RFC 9000 §16).
    mutating func readQUICVarint() -> UInt64? {
        guard let first = getInteger(at: readerIndex, as: UInt8.self) else { return nil }
        let length = 1 << Int(first >> 6)
        if length == 1 {
            moveReaderIndex(forwardBy: 1)
            return UInt64(first)
        }
        guard let bytes = readBytes(length: length) else { return nil }
        return bytes.dropFirst().reduce(UInt64(first & 0x3f)) { $0 << 8 | UInt64($1) }
    }

    mutating func writeLEB128(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        writeInteger(UInt8(value))
    }
}
