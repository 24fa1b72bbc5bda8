import ChatmailCrypto
import NIOCore

/// The client side of family W, for `chatmailctl doctor`: what an iroh 1.x client sends and how it reads the
/// server's frames. The mirror of `decodeClientFrame` and `encode(_: ServerFrame, ...)`.
extension RelayProtocol {
    /// The answer to `challenge` by the key with Ed25519 seed `privateKey`: its public key and the signature
    /// over `challengeMessage(challenge)`.
    public static func clientAuth(privateKey: [UInt8], challenge: [UInt8]) throws -> ClientFrame {
        let publicKey = try Crypto.ed25519PublicKey(privateKey: privateKey)
        let signature = try Crypto.ed25519Sign(privateKey: privateKey, message: challengeMessage(challenge))
        return .clientAuth(key: EndpointKey(publicKey)!, signature: signature)
    }

    /// Appends the message for a client frame (one WebSocket binary message).
    public static func encode(_ frame: ClientFrame, into buffer: inout ByteBuffer) {
        func type(_ type: FrameType) { buffer.writeInteger(UInt8(type.rawValue)) }
        switch frame {
        case .clientAuth(let key, let signature):
            type(.clientAuth)
            key.write(to: &buffer)
            buffer.writeLEB128(UInt64(signature.count))
            buffer.writeBytes(signature)
        case .datagrams(let destination, let datagrams):
            writeDatagrams(
                datagrams, key: destination, as: (.clientToRelayDatagram, .clientToRelayDatagramBatch), into: &buffer)
        case .ping(let data):
            type(.ping)
            buffer.writeInteger(data)
        case .pong(let data):
            type(.pong)
            buffer.writeInteger(data)
        }
    }

    /// Decodes one WebSocket message from the server. Types a server must not send and bad layouts are errors.
    public static func decodeServerFrame(_ message: ByteBuffer) throws(RelayError) -> ServerFrame {
        var body = message
        guard let rawType = body.readQUICVarint() else { throw .malformedFrame("missing frame type") }
        guard body.readableBytes <= maxBodySize else { throw .frameTooLarge(body.readableBytes) }
        func exactly(_ count: Int) throws(RelayError) {
            guard body.readableBytes == count else { throw .malformedFrame("frame type \(rawType): wrong size") }
        }
        switch FrameType(rawValue: rawType) {
        case .serverChallenge:
            try exactly(challengeLength)
            return .serverChallenge(body.readBytes(length: challengeLength)!)
        case .serverConfirmsAuth:
            try exactly(0)
            return .serverConfirmsAuth
        case .serverDeniesAuth:
            guard let length = body.readLEB128(), length == UInt64(body.readableBytes),
                let reason = body.readString(length: body.readableBytes)
            else { throw .malformedFrame("bad ServerDeniesAuth") }
            return .serverDeniesAuth(reason)
        case .relayToClientDatagram, .relayToClientDatagramBatch:
            guard let source = EndpointKey(reading: &body), let ecn = body.readInteger(as: UInt8.self) else {
                throw .malformedFrame("bad datagram header")
            }
            var segmentSize: UInt16?
            if rawType == FrameType.relayToClientDatagramBatch.rawValue {
                guard let size = body.readInteger(as: UInt16.self) else { throw .malformedFrame("bad batch header") }
                segmentSize = size
            }
            return .datagrams(source: source, Datagrams(ecn: ecn, segmentSize: segmentSize, contents: body))
        case .endpointGone:
            try exactly(EndpointKey.length)
            return .endpointGone(EndpointKey(reading: &body)!)
        case .ping, .pong:
            try exactly(8)
            let data = body.readInteger(as: UInt64.self)!
            return rawType == FrameType.ping.rawValue ? .ping(data) : .pong(data)
        case .health:
            return .health(body.readString(length: body.readableBytes) ?? "")
        case .restarting:
            try exactly(8)
            let (reconnectIn, tryFor) = body.readMultipleIntegers(as: (UInt32, UInt32).self)!
            return .restarting(reconnectInMilliseconds: reconnectIn, tryForMilliseconds: tryFor)
        case .status:
            try exactly(1)
            guard let status = Status(rawValue: body.readInteger(as: UInt8.self)!) else {
                throw .malformedFrame("unknown status")
            }
            return .status(status)
        case .clientAuth, .clientToRelayDatagram, .clientToRelayDatagramBatch, nil:
            throw .unexpectedFrameType(rawType)
        }
    }
}
