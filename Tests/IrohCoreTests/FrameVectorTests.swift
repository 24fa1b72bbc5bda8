import ChatmailCrypto
import NIOCore
import Testing

@testable import IrohCore

@Suite struct LegacyFrameTests {
    /// ClientInfo from the notes (§2.4), as a WebSocket message and as a stream frame.
    static let clientInfoMessage = hex(
        """
        02 52454c4159f09f9491 \(publicKeyHex)
        88e77b22f292ab37435da8de0bc8cb84e288f4e73b3582a52731e9ff9865465c87e05e8d427df422bb6e85e1c05f6f749837baa4a5c7eba3230d77569910430e
        03
        """)

    @Test func clientInfoVectorVerifies() throws {
        #expect(Self.clientInfoMessage.count == 107)
        let (type, payload) = try LegacyProtocol.splitMessage(ByteBuffer(bytes: Self.clientInfoMessage))
        guard case .clientInfo(let info) = try LegacyProtocol.decodeClientFrame(type: type, payload: payload) else {
            Issue.record("not ClientInfo")
            return
        }
        #expect(info.key == vectorKey)
        #expect(info.message == [3])
        try info.verify()
        // Our own signature over the version byte is the same (Ed25519 is deterministic).
        #expect(try Crypto.ed25519Sign(privateKey: secretKey, message: [3]) == info.signature)
    }

    @Test func clientInfoOverStreamFraming() throws {
        var stream = ByteBuffer(bytes: [2, 0, 0, 0, 0x6a] + Self.clientInfoMessage.dropFirst())
        let frame = try #require(try LegacyProtocol.readStreamFrame(from: &stream))
        #expect(frame.type == 2 && frame.payload.readableBytes == 106 && stream.readableBytes == 0)
        var session = RelaySession(family: .legacy, challenge: [])
        #expect(try session.receive(legacyType: frame.type, payload: frame.payload) == .authenticated(vectorKey))
        #expect(session.key == vectorKey)
    }

    @Test func clientInfoWithWrongSignatureOrVersionIsRefused() throws {
        var badSignature = Self.clientInfoMessage
        badSignature[60] ^= 1
        var badVersion = Self.clientInfoMessage
        badVersion[106] = 4
        for message in [badSignature, badVersion] {
            var session = RelaySession(family: .legacy, challenge: [])
            #expect(throws: RelayError.self) { try session.receive(message: ByteBuffer(bytes: message)) }
            #expect(session.key == nil)
        }
        // A version-4 message signed correctly is still refused for its version.
        let signature = try Crypto.ed25519Sign(privateKey: secretKey, message: [4])
        let info = LegacyProtocol.ClientInfo(key: vectorKey, signature: signature, message: [4])
        #expect(throws: RelayError.authenticationFailed("unsupported protocol version")) { try info.verify() }
    }

    @Test func framesBeforeClientInfoAreRefused() {
        var session = RelaySession(family: .legacy, challenge: [])
        let ping = buffer("0c 2a2a2a2a2a2a2a2a")
        #expect(throws: RelayError.notAuthenticated) { try session.receive(message: ping) }
    }

    @Test func serverFramesMatchTheVectors() {
        func encoded(_ frame: LegacyProtocol.ServerFrame, stream: Bool = false) -> [UInt8] {
            var out = ByteBuffer()
            LegacyProtocol.encode(frame, streamHeader: stream, into: &out)
            return out.bytes
        }
        #expect(encoded(.peerGone(vectorKey)) == hex("08 \(publicKeyHex)"))
        #expect(encoded(.ping(0x2a2a_2a2a_2a2a_2a2a)) == hex("0c 2a2a2a2a2a2a2a2a"))
        #expect(encoded(.pong(0x2a2a_2a2a_2a2a_2a2a), stream: true) == hex("0d 00000008 2a2a2a2a2a2a2a2a"))
        #expect(encoded(.keepAlive, stream: true) == hex("06 00000000"))
        #expect(
            encoded(.restarting(reconnectInMilliseconds: 10, tryForMilliseconds: 20)) == hex("0f 0000000a 00000014"))
        #expect(encoded(.health("not authenticated")) == [14] + Array("not authenticated".utf8))
        let packet = ByteBuffer(string: "Hello World!")
        #expect(
            encoded(.recvPacket(source: vectorKey, packet: packet), stream: true)
                == hex("05 0000002c \(publicKeyHex) 48656c6c6f20576f726c6421"))
    }

    @Test func clientFramesDecode() throws {
        let send = try LegacyProtocol.decodeClientFrame(type: 4, payload: buffer("\(publicKeyHex) 0102"))
        #expect(send == .sendPacket(destination: vectorKey, packet: buffer("0102")))
        #expect(try LegacyProtocol.decodeClientFrame(type: 7, payload: buffer("01")) == .notePreferred(true))
        #expect(try LegacyProtocol.decodeClientFrame(type: 13, payload: buffer("0000000000000007")) == .pong(7))
    }

    @Test func badFramesAreErrors() {
        let cases: [(UInt8, String)] = [
            (4, String(publicKeyHex.prefix(62))),  // short key
            (12, "01020304"),  // short ping
            (7, "0101"),  // NotePreferred of 2 bytes
            (5, "\(publicKeyHex) 00"),  // RecvPacket is server-only
            (9, ""), (200, ""),  // removed and unknown types
        ]
        for (type, body) in cases {
            #expect(throws: RelayError.self) { try LegacyProtocol.decodeClientFrame(type: type, payload: buffer(body)) }
        }
        let oversized = ByteBuffer(repeating: 0, count: 32 + LegacyProtocol.maxPacketSize + 1)
        #expect(throws: RelayError.frameTooLarge(LegacyProtocol.maxPacketSize + 1)) {
            try LegacyProtocol.decodeClientFrame(type: 4, payload: oversized)
        }
    }

    @Test func streamFramingWaitsForWholeFramesAndBoundsLength() throws {
        var partial = buffer("0c 00000008 2a2a")
        #expect(try LegacyProtocol.readStreamFrame(from: &partial) == nil)
        #expect(partial.readableBytes == 7)
        var huge = buffer("04 00100001")
        #expect(throws: RelayError.frameTooLarge(1 << 20 + 1)) { try LegacyProtocol.readStreamFrame(from: &huge) }
        var two = buffer("0c 00000008 2a2a2a2a2a2a2a2a 06 00000000")
        #expect(try LegacyProtocol.readStreamFrame(from: &two)?.type == 12)
        #expect(try LegacyProtocol.readStreamFrame(from: &two)?.payload.readableBytes == 0)
        #expect(two.readableBytes == 0)
    }
}

@Suite struct RelayFrameTests {
    static let challenge = Array(UInt8(0)..<16)
    static let clientAuth = hex(
        """
        01 \(publicKeyHex)
        40 a28b5ebc6a930b5d80ad5aca2a8e48ad4a064e699c0866674c8b8e61a5f4ea94
           0ee8b9f06732930250ac0735555abe77e8df740165edc3163be432f0e4f3cf0f
        """)

    @Test func handshakeVectors() throws {
        #expect(
            RelayProtocol.challengeMessage(Self.challenge)
                == hex("b7b16e505d2cb5dbaf494800092c3b05a6c45d8d3fd4f1b888c6a77240b876c0"))
        var session = RelaySession(family: .relay(.v2), challenge: Self.challenge)
        var out = ByteBuffer()
        session.encode(try #require(session.greeting), streamHeader: false, into: &out)
        #expect(out.bytes == hex("00 000102030405060708090a0b0c0d0e0f"))
        #expect(Self.clientAuth.count == 98)
        #expect(try session.receive(message: ByteBuffer(bytes: Self.clientAuth)) == .authenticated(vectorKey))
        out.clear()
        session.encode(.confirmAuth, streamHeader: false, into: &out)
        #expect(out.bytes == [2])
        out.clear()
        session.encode(
            .denyAuth(RelaySession.denial(for: .authenticationFailed("signature invalid"))),
            streamHeader: false, into: &out)
        #expect(out.bytes == hex("03 11 7369676e617475726520696e76616c6964"))
        // Our signer produces the same ClientAuth signature.
        let signature = try Crypto.ed25519Sign(
            privateKey: secretKey, message: RelayProtocol.challengeMessage(Self.challenge))
        #expect(signature == Array(Self.clientAuth.suffix(64)))
    }

    @Test func wrongChallengeOrSignatureIsDenied() {
        var other = RelaySession(family: .relay(.v1), challenge: Array(repeating: 7, count: 16))
        #expect(throws: RelayError.authenticationFailed("signature invalid")) {
            try other.receive(message: ByteBuffer(bytes: Self.clientAuth))
        }
        var tampered = Self.clientAuth
        tampered[97] ^= 0x80
        var session = RelaySession(family: .relay(.v2), challenge: Self.challenge)
        #expect(throws: RelayError.self) { try session.receive(message: ByteBuffer(bytes: tampered)) }
        var shortAuth = RelaySession(family: .relay(.v2), challenge: Self.challenge)
        #expect(throws: RelayError.self) {
            try shortAuth.receive(message: ByteBuffer(bytes: Self.clientAuth.dropLast()))
        }
        var early = RelaySession(family: .relay(.v2), challenge: Self.challenge)
        #expect(throws: RelayError.notAuthenticated) { try early.receive(message: buffer("09 2a2a2a2a2a2a2a2a")) }
    }

    @Test func serverFramesMatchTheVectors() {
        func encoded(_ frame: RelayProtocol.ServerFrame) -> [UInt8] {
            var out = ByteBuffer()
            RelayProtocol.encode(frame, into: &out)
            return out.bytes
        }
        let hello = ByteBuffer(string: "Hello World!")
        #expect(encoded(.endpointGone(vectorKey)) == hex("08 \(publicKeyHex)"))
        #expect(encoded(.ping(0x2a2a_2a2a_2a2a_2a2a)) == hex("09 2a2a2a2a2a2a2a2a"))
        #expect(encoded(.pong(0x2a2a_2a2a_2a2a_2a2a)) == hex("0a 2a2a2a2a2a2a2a2a"))
        #expect(
            encoded(.restarting(reconnectInMilliseconds: 10, tryForMilliseconds: 20)) == hex("0c 0000000a 00000014"))
        #expect(encoded(.status(.sameEndpointIdConnected)) == hex("0d 01"))
        #expect(encoded(.status(.rateLimited)) == hex("0d 02"))
        #expect(
            encoded(.health("Hello? Yes this is dog."))
                == hex("0b 48656c6c6f3f20596573207468697320697320646f672e"))
        #expect(
            encoded(.datagrams(source: vectorKey, .init(ecn: 3, segmentSize: nil, contents: hello)))
                == hex("06 \(publicKeyHex) 03 48656c6c6f20576f726c6421"))
        #expect(
            encoded(.datagrams(source: vectorKey, .init(ecn: 3, segmentSize: 6, contents: hello)))
                == hex("07 \(publicKeyHex) 03 0006 48656c6c6f20576f726c6421"))
    }

    @Test func clientFramesMatchTheVectors() throws {
        let hello = ByteBuffer(string: "Hello World!")
        #expect(
            try RelayProtocol.decodeClientFrame(buffer("04 \(publicKeyHex) 03 48656c6c6f20576f726c6421"))
                == .datagrams(destination: vectorKey, .init(ecn: 3, segmentSize: nil, contents: hello)))
        #expect(
            try RelayProtocol.decodeClientFrame(buffer("05 \(publicKeyHex) 03 0006 48656c6c6f20576f726c6421"))
                == .datagrams(destination: vectorKey, .init(ecn: 3, segmentSize: 6, contents: hello)))
        // A two-byte varint type 9 (0x40 0x09) decodes like the one-byte form.
        #expect(try RelayProtocol.decodeClientFrame(buffer("4009 2a2a2a2a2a2a2a2a")) == .ping(0x2a2a_2a2a_2a2a_2a2a))
    }

    @Test func badClientFramesAreErrors() {
        let cases = [
            "", "06 \(publicKeyHex) 00 01",  // empty; server-only type
            "04 \(publicKeyHex) 00",  // empty datagram
            "04 \(publicKeyHex) 04 01",  // ECN out of range
            "05 \(publicKeyHex) 00 00",  // short batch header
            "09 2a2a", "0b 41", "0d 00", "3f", "80",  // short ping, Health/Status from a client, unknown, short varint
        ]
        for text in cases {
            #expect(throws: RelayError.self, "\(text)") { try RelayProtocol.decodeClientFrame(buffer(text)) }
        }
        var oversized = ByteBuffer(bytes: [4] + vectorKey.bytes + [0])
        oversized.writeRepeatingByte(1, count: RelayProtocol.maxBodySize)
        #expect(throws: RelayError.frameTooLarge(RelayProtocol.maxBodySize + 33)) {
            try RelayProtocol.decodeClientFrame(oversized)
        }
    }

    @Test func versionsGetTheirOwnHealthFrames() {
        func encoded(_ message: ServerMessage, _ version: RelayProtocol.Version) -> [UInt8]? {
            var out = ByteBuffer()
            let session = RelaySession(family: .relay(version), challenge: [])
            return session.encode(message, streamHeader: false, into: &out) ? out.bytes : nil
        }
        #expect(encoded(.status(.sameEndpointIdConnected), .v2) == [13, 1])
        #expect(encoded(.status(.sameEndpointIdConnected), .v1)?.first == 11)
        #expect(encoded(.status(.healthy), .v1) == nil)
        #expect(encoded(.packet(source: vectorKey, .legacy(ByteBuffer())), .v2) == nil)
        var out = ByteBuffer()
        #expect(!RelaySession(family: .legacy, challenge: []).encode(.status(.healthy), streamHeader: true, into: &out))
        #expect(!RelaySession(family: .legacy, challenge: []).encode(.challenge([]), streamHeader: true, into: &out))
        #expect(out.readableBytes == 0)
    }
}
