import ChatmailCrypto
import NIOCore
import Testing

@testable import IrohCore

/// The client side of family L (chatmailctl doctor) against the server's own codec.
@Suite struct LegacyClientTests {
    @Test func clientFramesDecodeOnTheServerSide() throws {
        let info = try LegacyProtocol.clientInfo(privateKey: [UInt8](repeating: 0x2a, count: 32))
        var buffer = ByteBuffer()
        LegacyProtocol.encode(info, streamHeader: true, into: &buffer)
        // The same bytes as the vector from the notes (§2.4), with the stream header.
        #expect(Array(buffer.readableBytesView.dropFirst(5)) == Array(LegacyFrameTests.clientInfoMessage.dropFirst()))
        let frame = try #require(try LegacyProtocol.readStreamFrame(from: &buffer))
        guard
            case .clientInfo(let decoded) = try LegacyProtocol.decodeClientFrame(
                type: frame.type, payload: frame.payload)
        else {
            Issue.record("not ClientInfo")
            return
        }
        try decoded.verify()
        let key = decoded.key
        for sent: LegacyProtocol.ClientFrame in [
            .sendPacket(destination: key, packet: ByteBuffer(bytes: [1, 2, 3])), .ping(7), .pong(8),
            .notePreferred(true),
        ] {
            var bytes = ByteBuffer()
            LegacyProtocol.encode(sent, streamHeader: true, into: &bytes)
            let frame = try #require(try LegacyProtocol.readStreamFrame(from: &bytes))
            #expect(try LegacyProtocol.decodeClientFrame(type: frame.type, payload: frame.payload) == sent)
        }
    }

    @Test func serverFramesDecodeOnTheClientSide() throws {
        let key = try #require(EndpointKey([UInt8](repeating: 9, count: 32)))
        for sent: LegacyProtocol.ServerFrame in [
            .recvPacket(source: key, packet: ByteBuffer(bytes: [4, 5])), .keepAlive, .peerGone(key), .ping(1),
            .pong(2), .health("bad"), .restarting(reconnectInMilliseconds: 10, tryForMilliseconds: 20),
        ] {
            var bytes = ByteBuffer()
            LegacyProtocol.encode(sent, streamHeader: true, into: &bytes)
            let frame = try #require(try LegacyProtocol.readStreamFrame(from: &bytes))
            #expect(try LegacyProtocol.decodeServerFrame(type: frame.type, payload: frame.payload) == sent)
        }
        #expect(throws: RelayError.self) { try LegacyProtocol.decodeServerFrame(type: 2, payload: ByteBuffer()) }
        #expect(throws: RelayError.self) { try LegacyProtocol.decodeServerFrame(type: 12, payload: ByteBuffer()) }
    }
}
