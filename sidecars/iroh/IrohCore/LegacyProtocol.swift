import ChatmailCrypto
import NIOCore

/// Family L: the relay protocol of iroh ≤ 0.90 (Delta Chat's iroh 0.35). Over the `iroh derp http` upgrade each
/// frame is `u8 type | u32-BE length | payload`; over a WebSocket without sub-protocol one binary message is
/// `u8 type | payload`.
public enum LegacyProtocol {
    /// Frame types; the numbers clash with family W, so they never cross families.
    public enum FrameType: UInt8, Sendable {
        case clientInfo = 2
        case sendPacket = 4
        case recvPacket = 5
        case keepAlive = 6
        case notePreferred = 7
        case peerGone = 8
        case ping = 12
        case pong = 13
        case health = 14
        case restarting = 15
    }

    /// The largest frame payload (`MAX_FRAME_SIZE`).
    public static let maxFrameSize = 1 << 20
    /// The largest packet inside SendPacket/RecvPacket, not counting the key (`MAX_PACKET_SIZE`).
    public static let maxPacketSize = 1 << 16
    /// The stream header: type and length.
    public static let headerLength = 5
    /// `"RELAY🔑"`, the start of ClientInfo.
    public static let magic: [UInt8] = Array("RELAY🔑".utf8)
    /// The protocol version ClientInfo must carry.
    public static let protocolVersion = 3

    /// A frame from a client.
    public enum ClientFrame: Equatable, Sendable {
        case clientInfo(ClientInfo)
        case sendPacket(destination: EndpointKey, packet: ByteBuffer)
        case notePreferred(Bool)
        case ping(UInt64)
        case pong(UInt64)
    }

    /// A frame to a client.
    public enum ServerFrame: Equatable, Sendable {
        case recvPacket(source: EndpointKey, packet: ByteBuffer)
        case keepAlive
        case peerGone(EndpointKey)
        case ping(UInt64)
        case pong(UInt64)
        case health(String)
        case restarting(reconnectInMilliseconds: UInt32, tryForMilliseconds: UInt32)
    }

    /// The handshake frame: the client's key and its signature over the version message.
    public struct ClientInfo: Equatable, Sendable {
        public var key: EndpointKey
        public var signature: [UInt8]
        public var message: [UInt8]

        public init(key: EndpointKey, signature: [UInt8], message: [UInt8]) {
            self.key = key
            self.signature = signature
            self.message = message
        }

        /// Checks the signature over `message` and that `message` is postcard `ClientInfo { version: 3 }`.
        public func verify() throws(RelayError) {
            guard Crypto.ed25519Verify(publicKey: key.bytes, signature: signature, message: message) else {
                throw .authenticationFailed("signature invalid")
            }
            var reader = ByteBuffer(bytes: message)
            guard let version = reader.readLEB128(), version == UInt64(LegacyProtocol.protocolVersion) else {
                throw .authenticationFailed("unsupported protocol version")
            }
        }
    }

    /// Reads the next complete stream frame (`type | length | payload`) from `buffer`, or nil when more bytes are
    /// needed. The frame's payload is returned as a slice; nothing is consumed until the whole frame is there.
    public static func readStreamFrame(from buffer: inout ByteBuffer, maxFrameSize: Int = maxFrameSize)
        throws(RelayError) -> (type: UInt8, payload: ByteBuffer)?
    {
        guard let (type, length) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt32).self)
        else { return nil }
        guard Int(length) <= maxFrameSize else { throw .frameTooLarge(Int(length)) }
        guard buffer.readableBytes >= headerLength + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: headerLength)
        return (type, buffer.readSlice(length: Int(length))!)
    }

    /// Splits a WebSocket message into its type byte and payload.
    public static func splitMessage(_ message: ByteBuffer) throws(RelayError) -> (type: UInt8, payload: ByteBuffer) {
        var message = message
        guard let type = message.readInteger(as: UInt8.self) else { throw .malformedFrame("empty message") }
        return (type, message)
    }

    /// Decodes a frame a client sent. Unknown types, types only a server sends, and wrong sizes are errors.
    public static func decodeClientFrame(type: UInt8, payload: ByteBuffer, maxPacketSize: Int = maxPacketSize)
        throws(RelayError) -> ClientFrame
    {
        var payload = payload
        switch FrameType(rawValue: type) {
        case .clientInfo:
            guard payload.readableBytes >= magic.count + EndpointKey.length + Crypto.ed25519SignatureLength,
                payload.readBytes(length: magic.count) == magic
            else { throw .authenticationFailed("bad ClientInfo") }
            let key = EndpointKey(reading: &payload)!
            let signature = payload.readBytes(length: Crypto.ed25519SignatureLength)!
            let message = payload.readBytes(length: payload.readableBytes)!
            return .clientInfo(ClientInfo(key: key, signature: signature, message: message))
        case .sendPacket:
            guard let destination = EndpointKey(reading: &payload) else { throw .malformedFrame("short SendPacket") }
            guard payload.readableBytes <= maxPacketSize else { throw .frameTooLarge(payload.readableBytes) }
            return .sendPacket(destination: destination, packet: payload)
        case .notePreferred:
            guard payload.readableBytes == 1, let flag = payload.readInteger(as: UInt8.self) else {
                throw .malformedFrame("NotePreferred must be 1 byte")
            }
            return .notePreferred(flag != 0)
        case .ping, .pong:
            guard payload.readableBytes == 8, let data = payload.readInteger(as: UInt64.self) else {
                throw .malformedFrame("Ping/Pong must be 8 bytes")
            }
            return type == FrameType.ping.rawValue ? .ping(data) : .pong(data)
        case .recvPacket, .keepAlive, .peerGone, .health, .restarting, nil:
            throw .unexpectedFrameType(UInt64(type))
        }
    }

    /// Appends `frame`, with the stream length field when `streamHeader` is set (`iroh derp http`) and without it
    /// for a WebSocket message.
    public static func encode(_ frame: ServerFrame, streamHeader: Bool, into buffer: inout ByteBuffer) {
        writeFrame(streamHeader: streamHeader, into: &buffer) { buffer in
            switch frame {
            case .recvPacket(let source, let packet):
                source.write(to: &buffer)
                buffer.writeImmutableBuffer(packet)
                return .recvPacket
            case .keepAlive:
                return .keepAlive
            case .peerGone(let key):
                key.write(to: &buffer)
                return .peerGone
            case .ping(let data):
                buffer.writeInteger(data)
                return .ping
            case .pong(let data):
                buffer.writeInteger(data)
                return .pong
            case .health(let text):
                buffer.writeString(text)
                return .health
            case .restarting(let reconnectIn, let tryFor):
                buffer.writeMultipleIntegers(reconnectIn, tryFor)
                return .restarting
            }
        }
    }

    /// Writes the type byte (and with `streamHeader` the length) around the payload `body` writes; `body`
    /// returns the frame's type.
    @inline(__always)
    static func writeFrame(streamHeader: Bool, into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> FrameType) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt8(0))
        if streamHeader { buffer.writeInteger(UInt32(0)) }
        let bodyStart = buffer.writerIndex
        let type = body(&buffer)
        buffer.setInteger(type.rawValue, at: start)
        if streamHeader { buffer.setInteger(UInt32(buffer.writerIndex - bodyStart), at: start + 1) }
    }
}

extension ByteBuffer {
    /// Reads an unsigned LEB128 varint (postcard's integer encoding) of at most 10 bytes.
    mutating func readLEB128() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let save = readerIndex
        while let byte = readInteger(as: UInt8.self) {
            guard shift < 64 else { break }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        moveReaderIndex(to: save)
        return nil
    }
}
