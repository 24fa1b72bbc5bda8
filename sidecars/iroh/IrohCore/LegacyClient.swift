import ChatmailCrypto
import NIOCore

/// The client side of family L, for `chatmailctl doctor`: what an iroh 0.35 client sends and how it reads the
/// server's frames. The mirror of `decodeClientFrame` and `encode(_: ServerFrame, ...)`.
extension LegacyProtocol {
    /// The ClientInfo of the key with Ed25519 seed `privateKey`: the magic, the public key, the signature over
    /// the postcard version message, and the message.
    public static func clientInfo(privateKey: [UInt8]) throws -> ClientFrame {
        let message = [UInt8(protocolVersion)]
        let publicKey = try Crypto.ed25519PublicKey(privateKey: privateKey)
        let signature = try Crypto.ed25519Sign(privateKey: privateKey, message: message)
        return .clientInfo(ClientInfo(key: EndpointKey(publicKey)!, signature: signature, message: message))
    }

    /// Appends a client frame, with the stream length field when `streamHeader` is set.
    public static func encode(_ frame: ClientFrame, streamHeader: Bool, into buffer: inout ByteBuffer) {
        writeFrame(streamHeader: streamHeader, into: &buffer) { buffer in
            switch frame {
            case .clientInfo(let info):
                buffer.writeBytes(magic)
                info.key.write(to: &buffer)
                buffer.writeBytes(info.signature)
                buffer.writeBytes(info.message)
                return .clientInfo
            case .sendPacket(let destination, let packet):
                destination.write(to: &buffer)
                buffer.writeImmutableBuffer(packet)
                return .sendPacket
            case .notePreferred(let preferred):
                buffer.writeInteger(UInt8(preferred ? 1 : 0))
                return .notePreferred
            case .ping(let data):
                buffer.writeInteger(data)
                return .ping
            case .pong(let data):
                buffer.writeInteger(data)
                return .pong
            }
        }
    }

    /// Decodes a frame the server sent. Unknown types and wrong sizes are errors.
    public static func decodeServerFrame(type: UInt8, payload: ByteBuffer) throws(RelayError) -> ServerFrame {
        var payload = payload
        switch FrameType(rawValue: type) {
        case .recvPacket:
            guard let source = EndpointKey(reading: &payload) else { throw .malformedFrame("short RecvPacket") }
            return .recvPacket(source: source, packet: payload)
        case .keepAlive:
            return .keepAlive
        case .peerGone:
            guard let key = EndpointKey(reading: &payload) else { throw .malformedFrame("short PeerGone") }
            return .peerGone(key)
        case .ping, .pong:
            guard payload.readableBytes == 8, let data = payload.readInteger(as: UInt64.self) else {
                throw .malformedFrame("Ping/Pong must be 8 bytes")
            }
            return type == FrameType.ping.rawValue ? .ping(data) : .pong(data)
        case .health:
            return .health(payload.readString(length: payload.readableBytes) ?? "")
        case .restarting:
            guard let (reconnect, tryFor) = payload.readMultipleIntegers(as: (UInt32, UInt32).self) else {
                throw .malformedFrame("short Restarting")
            }
            return .restarting(reconnectInMilliseconds: reconnect, tryForMilliseconds: tryFor)
        case .clientInfo, .sendPacket, .notePreferred, nil:
            throw .unexpectedFrameType(UInt64(type))
        }
    }
}
