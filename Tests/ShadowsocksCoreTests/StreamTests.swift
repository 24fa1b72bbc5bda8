import ChatmailCrypto
import ChatmailTestSupport
import NIOCore
import Testing

@testable import ShadowsocksCore

/// Vectors from /work/shared/notes/shadowsocks.md §1.6 (SIP004 ones checked there against ss-server 3.3.5; the
/// 2022 ciphertexts are regression vectors, the subkeys were checked with b3sum).
@Suite("Shadowsocks streams and requests")
struct StreamTests {
    static let target = bytes("03106d61696c2e6578616d706c652e6f726703e1")
    static let timestamp: UInt64 = 1_700_000_000

    static func credential2017(_ method: ShadowsocksMethod) -> ShadowsocksCredential {
        ShadowsocksCredential(method: method, keyText: "chatmail-test")!
    }

    static func credential2022(_ method: ShadowsocksMethod) -> ShadowsocksCredential {
        let psk = run(0, count: method.keyLength)
        return ShadowsocksCredential(method: method, keyText: Crypto.base64(psk))!
    }

    /// A SIP004 first flight: salt, then the target (and data) in chunks.
    static func request2017(_ credential: ShadowsocksCredential, salt: [UInt8], payload: [UInt8] = []) throws
        -> ByteBuffer
    {
        var sealer = try ChunkSealer(method: credential.method, key: credential.masterKey, salt: salt)
        var input = ByteBuffer(bytes: target + payload)
        var output = ByteBuffer()
        try sealer.seal(&input, into: &output, now: 0)
        return output
    }

    /// A SIP022 request: salt, fixed header, variable header (target, padding, data).
    static func request2022(
        _ credential: ShadowsocksCredential, salt: [UInt8], timestamp: UInt64 = timestamp, type: UInt8 = 0,
        padding: Int = 0, payload: [UInt8] = [0x16, 0x03, 0x01]
    ) throws -> ByteBuffer {
        var sealer = try ChunkSealer(method: credential.method, key: credential.masterKey, salt: salt)
        let variable =
            target + [UInt8(padding >> 8), UInt8(padding & 0xFF)] + [UInt8](repeating: 0, count: padding)
            + payload
        var fixed = ByteBuffer()
        fixed.writeInteger(type)
        fixed.writeInteger(timestamp)
        fixed.writeInteger(UInt16(variable.count))
        var output = ByteBuffer()
        try sealer.sealBlock(Array(fixed.readableBytesView), into: &output)
        try sealer.sealBlock(variable, into: &output)
        return output
    }

    @Test(
        "SIP004 first flight matches the notes' vectors",
        arguments: [
            (
                ShadowsocksMethod.aes128GCM, "3372e6b13614d0a048246189eb019a20", "ed0fdd8c2ba0b167991da458a92e6f615611",
                "8f00462f19d46340d611f6be10a982be6960dbd509686674868f33f96b330bdd539ef3c9"
            ),
            (
                .aes256GCM, "5e12525fa9b4cc7a3bdcf818a7a224ab46b20637c92214eec10d2f64f6ca30d0",
                "a87eeae15261237060c364d5830b6a6f4f94",
                "b7fad41afd612bc713acab6fb964ecb117f76445e827ea3de7892da6ad909d432196a972"
            ),
            (
                .chacha20Poly1305, "5e12525fa9b4cc7a3bdcf818a7a224ab46b20637c92214eec10d2f64f6ca30d0",
                "c3f89c954aeef69ffff2177a727c50b1cc8d",
                "c28066f4b13c57f183690f5808a730864985d135fa5083bb43bc0475a2074b74c3be79e2"
            ),
        ])
    func vectors2017(method: ShadowsocksMethod, subkey: String, length: String, address: String) throws {
        let credential = Self.credential2017(method)
        let salt = run(0, count: method.saltLength)
        #expect(hex(try method.sessionSubkey(key: credential.masterKey, salt: salt)) == subkey)
        let flight = try Self.request2017(credential, salt: salt)
        #expect(hex(flight) == hex(salt) + length + address)

        var handshake = ServerHandshake(credential: credential)
        var input = flight
        guard case .accepted(let request) = handshake.receive(&input, now: 0) else {
            Issue.record("not accepted")
            return
        }
        #expect(request.salt == salt)
        #expect(request.target == TargetAddress(host: .name(Array("mail.example.org".utf8)), port: 993))
        #expect(request.initialPayload.readableBytes == 0)
        #expect(input.readableBytes == 0)
    }

    @Test("SIP022 subkeys and request headers match the notes' vectors")
    func vectors2022() throws {
        let aes128 = Self.credential2022(.blake3AES128GCM)
        #expect(aes128.keyText == "AAECAwQFBgcICQoLDA0ODw==")
        #expect(
            hex(try ShadowsocksMethod.blake3AES128GCM.sessionSubkey(key: aes128.masterKey, salt: run(0x40, count: 16)))
                == "80e542bc94fbfe0078a6469c1e09a7cf")
        let aes256 = Self.credential2022(.blake3AES256GCM)
        #expect(aes256.keyText == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        let salt = run(0x40, count: 32)
        #expect(
            hex(try ShadowsocksMethod.blake3AES256GCM.sessionSubkey(key: aes256.masterKey, salt: salt))
                == "cb4edecf23461aaaeee9dcb3c1eb1be555c77e3661c7dd58c96bd5c3bcb6a064")

        let request = try Self.request2022(aes256, salt: salt)
        #expect(
            hex(request) == hex(salt) + "6974e6d351c385cfdec57dc55326bf673b2af4625ca8b18f741216"
                + "ed2f919d4381ab5b23b5a9aa494829cac0915b452f8ae144f63b18fd626a951c108e897f7bbcaebfc0")
        let chacha = try Self.request2022(Self.credential2022(.blake3ChaCha20Poly1305), salt: salt)
        #expect(hex(chacha.getSlice(at: 32, length: 27)!) == "d9b69a4c76f623b46df88300d51967eed5c88230d8f1a75dc6167d")
    }

    @Test(
        "SIP022 requests are accepted within ±30 s, with data or padding",
        arguments: [ShadowsocksMethod.blake3AES128GCM, .blake3AES256GCM, .blake3ChaCha20Poly1305])
    func accept2022(method: ShadowsocksMethod) throws {
        let credential = Self.credential2022(method)
        let salt = run(0x40, count: method.saltLength)
        for now in [Self.timestamp - 30, Self.timestamp, Self.timestamp + 30] {
            var handshake = ServerHandshake(credential: credential)
            var input = try Self.request2022(credential, salt: salt)
            guard case .accepted(let request) = handshake.receive(&input, now: now) else {
                Issue.record("not accepted at \(now)")
                continue
            }
            #expect(request.target.port == 993)
            #expect(hex(request.initialPayload) == "160301")
        }
        var padded = ServerHandshake(credential: credential)
        var input = try Self.request2022(credential, salt: salt, padding: 900, payload: [])
        guard case .accepted(let request) = padded.receive(&input, now: Self.timestamp) else {
            Issue.record("padded request not accepted")
            return
        }
        #expect(request.initialPayload.readableBytes == 0)
    }

    @Test("SIP022 requests with a bad timestamp, type or padding fail")
    func reject2022() throws {
        let credential = Self.credential2022(.blake3AES256GCM)
        let salt = run(0x40, count: 32)
        func outcome(_ request: ByteBuffer, now: UInt64 = StreamTests.timestamp) -> ShadowsocksError? {
            var handshake = ServerHandshake(credential: credential)
            var input = request
            if case .failed(let error) = handshake.receive(&input, now: now) { return error }
            return nil
        }
        #expect(outcome(try Self.request2022(credential, salt: salt), now: Self.timestamp + 31) == .timestamp)
        #expect(outcome(try Self.request2022(credential, salt: salt), now: Self.timestamp - 31) == .timestamp)
        #expect(outcome(try Self.request2022(credential, salt: salt, type: 1)) == .header)
        #expect(outcome(try Self.request2022(credential, salt: salt, payload: [])) == .header)
        #expect(outcome(try Self.request2022(credential, salt: salt, padding: 901)) == .header)
        let other = Self.credential2022(.blake3AES256GCM)
        let wrongKey = ShadowsocksCredential(method: .blake3AES256GCM, keyText: Crypto.base64(run(1, count: 32)))!
        _ = other
        var handshake = ServerHandshake(credential: wrongKey)
        var input = try Self.request2022(credential, salt: salt)
        guard case .failed(.authentication) = handshake.receive(&input, now: Self.timestamp) else {
            Issue.record("a wrong key was accepted")
            return
        }
    }

    @Test(
        "Requests fed one byte at a time give the same result",
        arguments: [ShadowsocksMethod.aes256GCM, .chacha20Poly1305, .blake3AES128GCM, .blake3AES256GCM])
    func dripFeed(method: ShadowsocksMethod) throws {
        let credential = method.is2022 ? Self.credential2022(method) : Self.credential2017(method)
        let salt = run(7, count: method.saltLength)
        let whole =
            method.is2022
            ? try Self.request2022(credential, salt: salt, payload: Array("hello".utf8))
            : try Self.request2017(credential, salt: salt, payload: Array("hello".utf8))
        var handshake = ServerHandshake(credential: credential)
        var input = ByteBuffer()
        for (index, byte) in whole.readableBytesView.enumerated() {
            input.writeInteger(byte)
            switch handshake.receive(&input, now: Self.timestamp) {
            case .needMore:
                #expect(index < whole.readableBytes - 1)
            case .accepted(let request):
                #expect(index == whole.readableBytes - 1)
                #expect(String(buffer: request.initialPayload) == "hello")
            case .failed(let error):
                Issue.record("failed at byte \(index): \(error)")
                return
            }
        }
    }

    @Test(
        "Streams round-trip through sealer and opener in chunks of the method's size",
        arguments: ShadowsocksMethod.allCases)
    func roundTrip(method: ShadowsocksMethod) throws {
        var random = SeededGenerator(seed: 42)
        let key = random.bytes(method.keyLength)
        let salt = random.bytes(method.saltLength)
        var sealer = try ChunkSealer(method: method, key: key, salt: salt)
        var sent: [UInt8] = []
        var wire = ByteBuffer()
        for size in [1, 100, method.maximumPayload, method.maximumPayload + 1, 3 * method.maximumPayload + 5] {
            let data = random.bytes(size)
            sent += data
            var input = ByteBuffer(bytes: data)
            let before = wire.readableBytes
            let expected = sealer.sealedSize(size)
            try sealer.seal(&input, into: &wire, now: 0)
            #expect(wire.readableBytes - before == expected)
        }
        #expect(wire.readBytes(length: salt.count) == salt)
        var opener = try ChunkOpener(method: method, subkey: method.sessionSubkey(key: key, salt: salt))
        var received = ByteBuffer()
        // Deliver in irregular pieces.
        var pending = ByteBuffer()
        while wire.readableBytes > 0 {
            var piece = wire.readSlice(length: min(wire.readableBytes, Int.random(in: 1...40000, using: &random)))!
            pending.writeBuffer(&piece)
            try opener.open(from: &pending, into: &received)
        }
        #expect(pending.readableBytes == 0)
        #expect(Array(received.readableBytesView) == sent)
    }

    @Test("A 2022 response starts with salt, header (type 1, timestamp, request salt, length) and first chunk")
    func response2022() throws {
        let method = ShadowsocksMethod.blake3AES256GCM
        let key = run(0, count: 32)
        let salt = run(0x80, count: 32)
        let requestSalt = run(0x40, count: 32)
        var sealer = try ChunkSealer(method: method, key: key, salt: salt, requestSalt: requestSalt)
        var input = ByteBuffer(string: "* OK")
        var wire = ByteBuffer()
        try sealer.seal(&input, into: &wire, now: 1234)
        #expect(wire.readableBytes == sealer.sealedSize(0) + 32 + 1 + 8 + 32 + 2 + 16 + 4 + 16)
        #expect(wire.readBytes(length: 32) == salt)
        var opener = try ChunkOpener(method: method, subkey: method.sessionSubkey(key: key, salt: salt))
        var header = ByteBuffer()
        #expect(try opener.openBlock(1 + 8 + 32 + 2, from: &wire, into: &header))
        #expect(header.readInteger(as: UInt8.self) == 1)
        #expect(header.readInteger(as: UInt64.self) == 1234)
        #expect(header.readBytes(length: 32) == requestSalt)
        #expect(header.readInteger(as: UInt16.self) == 4)
        var data = ByteBuffer()
        #expect(try opener.openBlock(4, from: &wire, into: &data))
        #expect(String(buffer: data) == "* OK")
    }

    @Test(
        "A flipped bit anywhere in a request makes it fail", arguments: [ShadowsocksMethod.aes256GCM, .blake3AES256GCM])
    func tampering(method: ShadowsocksMethod) throws {
        let credential = method.is2022 ? Self.credential2022(method) : Self.credential2017(method)
        let salt = run(3, count: method.saltLength)
        let good =
            method.is2022
            ? try Self.request2022(credential, salt: salt) : try Self.request2017(credential, salt: salt)
        var random = SeededGenerator(seed: 7)
        for _ in 0..<200 {
            var bad = Array(good.readableBytesView)
            let index = Int.random(in: 0..<bad.count, using: &random)
            bad[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            var handshake = ServerHandshake(credential: credential)
            var input = ByteBuffer(bytes: bad)
            if case .accepted = handshake.receive(&input, now: Self.timestamp) {
                Issue.record("accepted with byte \(index) changed")
            }
        }
    }

    @Test("Fuzz: random bytes never crash the handshake and are never accepted", arguments: ShadowsocksMethod.allCases)
    func fuzzHandshake(method: ShadowsocksMethod) throws {
        let credential = method.is2022 ? Self.credential2022(method) : Self.credential2017(method)
        var random = SeededGenerator(seed: 2026)
        for round in 0..<300 {
            var handshake = ServerHandshake(credential: credential)
            var input = ByteBuffer(bytes: random.bytes(Int.random(in: 0...400, using: &random)))
            switch handshake.receive(&input, now: Self.timestamp) {
            case .accepted: Issue.record("random input accepted in round \(round)")
            case .needMore, .failed: break
            }
        }
    }
}
