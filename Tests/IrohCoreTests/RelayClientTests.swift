import ChatmailCrypto
import NIOCore
import Testing

@testable import IrohCore

/// The client side of family W (chatmailctl doctor) against the server's own codec and the notes' vectors.
@Suite struct RelayClientTests {
    @Test func clientAuthIsTheNotesVectorAndVerifiesOnTheServerSide() throws {
        let challenge = Array(UInt8(0)...15)
        let auth = try RelayProtocol.clientAuth(privateKey: [UInt8](repeating: 0x2a, count: 32), challenge: challenge)
        var buffer = ByteBuffer()
        RelayProtocol.encode(auth, into: &buffer)
        // §3.3.3 of the notes: the ClientAuth message of secret key 2a × 32 for challenge 00..0f.
        #expect(
            Array(buffer.readableBytesView)
                == hex(
                    "01197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d6140"
                        + "a28b5ebc6a930b5d80ad5aca2a8e48ad4a064e699c0866674c8b8e61a5f4ea94"
                        + "0ee8b9f06732930250ac0735555abe77e8df740165edc3163be432f0e4f3cf0f"))
        var session = RelaySession(family: .relay(.v2), challenge: challenge)
        guard case .authenticated(let key) = try session.receive(message: buffer) else {
            Issue.record("not authenticated")
            return
        }
        let datagrams = RelayProtocol.Datagrams(ecn: 1, segmentSize: nil, contents: ByteBuffer(bytes: [1, 2, 3]))
        let batch = RelayProtocol.Datagrams(ecn: 0, segmentSize: 2, contents: ByteBuffer(bytes: [1, 2, 3, 4]))
        for sent: RelayProtocol.ClientFrame in [
            .datagrams(destination: key, datagrams), .datagrams(destination: key, batch), .ping(7), .pong(8),
        ] {
            var bytes = ByteBuffer()
            RelayProtocol.encode(sent, into: &bytes)
            #expect(try RelayProtocol.decodeClientFrame(bytes) == sent)
        }
    }

    @Test func serverFramesDecodeOnTheClientSide() throws {
        let key = try #require(EndpointKey([UInt8](repeating: 9, count: 32)))
        let datagrams = RelayProtocol.Datagrams(ecn: 2, segmentSize: nil, contents: ByteBuffer(bytes: [4, 5]))
        let batch = RelayProtocol.Datagrams(ecn: 0, segmentSize: 1, contents: ByteBuffer(bytes: [4, 5]))
        for sent: RelayProtocol.ServerFrame in [
            .serverChallenge(Array(repeating: 3, count: 16)), .serverConfirmsAuth,
            .serverDeniesAuth("signature invalid"), .datagrams(source: key, datagrams), .datagrams(source: key, batch),
            .endpointGone(key), .ping(1), .pong(2), .health("bad"),
            .restarting(reconnectInMilliseconds: 10, tryForMilliseconds: 20), .status(.rateLimited),
        ] {
            var bytes = ByteBuffer()
            RelayProtocol.encode(sent, into: &bytes)
            #expect(try RelayProtocol.decodeServerFrame(bytes) == sent)
        }
        // The notes' ServerDeniesAuth vector, a client frame type, and a short challenge.
        #expect(
            try RelayProtocol.decodeServerFrame(buffer("03117369676e617475726520696e76616c6964"))
                == .serverDeniesAuth("signature invalid"))
        #expect(throws: RelayError.self) { try RelayProtocol.decodeServerFrame(buffer("0100")) }
        #expect(throws: RelayError.self) { try RelayProtocol.decodeServerFrame(buffer("000102")) }
    }
}
