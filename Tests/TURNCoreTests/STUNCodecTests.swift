import ChatmailTestSupport
import Testing

@testable import TURNCore

/// RFC 5769 §2: the four sample messages, byte for byte (the RFC pads text attributes with spaces).
enum RFC5769 {
    static let shortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt"
    static let transactionID = STUNTransactionID(hex("b7e7a701bc34d686fa87dfae"))!

    static let request = hex(
        """
        000100582112a442b7e7a701bc34d686fa87dfae
        80220010 5354554e 20746573 7420636c 69656e74
        00240004 6e0001ff
        80290008 932ff9b1 51263b36
        00060009 6576746a 3a683676 59202020
        00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
        80280004 e57a3bcf
        """)
    static let ipv4Response = hex(
        """
        0101003c2112a442b7e7a701bc34d686fa87dfae
        8022000b 74657374 20766563 746f7220
        00200008 0001a147 e112a643
        00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
        80280004 c07d4c96
        """)
    static let ipv6Response = hex(
        """
        010100482112a442b7e7a701bc34d686fa87dfae
        8022000b 74657374 20766563 746f7220
        00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
        00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
        80280004 c8fb0b4c
        """)
    static let longTermRequest = hex(
        """
        000100602112a44278ad3433c6ad72c029da412e
        00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000
        0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341
        0014000b 6578616d 706c652e 6f726700
        00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666
        """)
}

@Suite("STUN codec")
struct STUNCodecTests {
    @Test("RFC 5769 §2.1 sample request: parse, verify, re-encode")
    func sampleRequest() throws {
        let message = try STUNMessage(parsing: RFC5769.request)
        #expect(message.type == .bindingRequest)
        #expect(message.transactionID == RFC5769.transactionID)
        #expect(message.software == "STUN test client")
        #expect(message.username == "evtj:h6vY")
        #expect(message.fingerprint == 0xe57a_3bcf)
        #expect(message.attribute(.priority) == .other(.priority, hex("6e0001ff")))
        #expect(message.unknownComprehensionRequiredAttributes == [.priority])
        let key = STUNCredentials.shortTermKey(password: RFC5769.shortTermPassword)
        #expect(STUNMessage.verifyMessageIntegrity(RFC5769.request, key: key))
        #expect(!STUNMessage.verifyMessageIntegrity(RFC5769.request, key: Array("wrong".utf8)))
        #expect(STUNMessage.verifyFingerprint(RFC5769.request))

        // Re-encoding the attributes before MESSAGE-INTEGRITY with space padding reproduces the vector.
        var bare = message
        bare.attributes.removeLast(2)
        let encoded = try bare.encoded(integrity: .sha1(key: key), fingerprint: true, padding: 0x20)
        #expect(encoded == RFC5769.request)
    }

    @Test("RFC 5769 §2.2 sample IPv4 response")
    func sampleIPv4Response() throws {
        let message = try STUNMessage(parsing: RFC5769.ipv4Response)
        #expect(message.type == .bindingSuccess)
        #expect(message.software == "test vector")
        #expect(message.xorMappedAddress == STUNAddress("192.0.2.1:32853"))
        let key = STUNCredentials.shortTermKey(password: RFC5769.shortTermPassword)
        #expect(STUNMessage.verifyMessageIntegrity(RFC5769.ipv4Response, key: key))
        #expect(STUNMessage.verifyFingerprint(RFC5769.ipv4Response))
        var bare = message
        bare.attributes.removeLast(2)
        #expect(try bare.encoded(integrity: .sha1(key: key), fingerprint: true, padding: 0x20) == RFC5769.ipv4Response)
    }

    @Test("RFC 5769 §2.3 sample IPv6 response")
    func sampleIPv6Response() throws {
        let message = try STUNMessage(parsing: RFC5769.ipv6Response)
        #expect(message.xorMappedAddress == STUNAddress("[2001:db8:1234:5678:11:2233:4455:6677]:32853"))
        #expect(message.xorMappedAddress?.description == "[2001:db8:1234:5678:11:2233:4455:6677]:32853")
        let key = STUNCredentials.shortTermKey(password: RFC5769.shortTermPassword)
        #expect(STUNMessage.verifyMessageIntegrity(RFC5769.ipv6Response, key: key))
        #expect(STUNMessage.verifyFingerprint(RFC5769.ipv6Response))
        var bare = message
        bare.attributes.removeLast(2)
        #expect(try bare.encoded(integrity: .sha1(key: key), fingerprint: true, padding: 0x20) == RFC5769.ipv6Response)
    }

    @Test("RFC 5769 §2.4 sample request with long-term authentication")
    func sampleLongTermRequest() throws {
        let message = try STUNMessage(parsing: RFC5769.longTermRequest)
        #expect(message.username == "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}")
        #expect(message.nonce == "f//499k954d6OL34oL9FSTvy64sA")
        #expect(message.realm == "example.org")
        #expect(message.fingerprint == nil)
        let key = STUNCredentials.longTermKey(username: message.username!, realm: "example.org", password: "TheMatrIX")
        #expect(STUNMessage.verifyMessageIntegrity(RFC5769.longTermRequest, key: key))
        #expect(!STUNMessage.verifyFingerprint(RFC5769.longTermRequest))
        var bare = message
        bare.attributes.removeLast()
        #expect(try bare.encoded(integrity: .sha1(key: key)) == RFC5769.longTermRequest)
    }

    @Test("a flipped bit anywhere breaks MESSAGE-INTEGRITY or FINGERPRINT")
    func tamperDetection() {
        let key = STUNCredentials.shortTermKey(password: RFC5769.shortTermPassword)
        for index in 0..<RFC5769.ipv4Response.count {
            var copy = RFC5769.ipv4Response
            copy[index] ^= 0x01
            let intact = STUNMessage.verifyMessageIntegrity(copy, key: key) && STUNMessage.verifyFingerprint(copy)
            #expect(!intact, "byte \(index)")
        }
    }

    @Test("MESSAGE-INTEGRITY-SHA256, full and truncated, alone and after MESSAGE-INTEGRITY")
    func sha256Integrity() throws {
        let key = STUNCredentials.longTermKey(username: "1700000000", realm: "t", password: "pw")
        let message = STUNMessage(
            type: .allocateRequest, transactionID: .random(),
            attributes: [.requestedTransport(17), .username("1700000000"), .realm("t"), .nonce("n")])
        for integrity in [STUNIntegrity.sha256(key: key), .sha256(key: key, length: 16), .both(key: key)] {
            let bytes = try message.encoded(integrity: integrity, fingerprint: true)
            let parsed = try STUNMessage(parsing: bytes)
            #expect(parsed.messageIntegritySHA256?.count == integrity.sha256Length)
            #expect(STUNMessage.verifyMessageIntegritySHA256(bytes, key: key))
            #expect(!STUNMessage.verifyMessageIntegritySHA256(bytes, key: Array(key.reversed())))
            #expect(STUNMessage.verifyMessageIntegrity(bytes, key: key) == integrity.sha1)
            #expect(STUNMessage.verifyFingerprint(bytes))
        }
        #expect(throws: STUNEncodeError.invalidIntegrityLength(18)) {
            try message.encoded(integrity: .sha256(key: key, length: 18))
        }
    }

    @Test("message type interleaving of method and class bits (RFC 8489 §5)")
    func messageTypes() {
        #expect(STUNMessageType.bindingRequest.rawValue == 0x0001)
        #expect(STUNMessageType.bindingSuccess.rawValue == 0x0101)
        #expect(STUNMessageType(method: .binding, class: .errorResponse).rawValue == 0x0111)
        #expect(STUNMessageType.allocateRequest.rawValue == 0x0003)
        #expect(STUNMessageType(method: .allocate, class: .errorResponse).rawValue == 0x0113)
        #expect(STUNMessageType.sendIndication.rawValue == 0x0016)
        #expect(STUNMessageType.dataIndication.rawValue == 0x0017)
        #expect(STUNMessageType(method: .channelBind, class: .successResponse).rawValue == 0x0109)
        for raw in UInt16(0)...0x3FFF {
            #expect(STUNMessageType(rawValue: raw)!.rawValue == raw)
        }
        #expect(STUNMessageType(rawValue: 0x4000) == nil)
    }

    @Test("XOR address encodings for IPv4 and IPv6 round-trip and match hand-computed bytes")
    func xorAddresses() throws {
        let id = STUNTransactionID(hex("0102030405060708090a0b0c"))!
        let v4 = STUNAddress("203.0.113.5:5000")!
        var out: [UInt8] = []
        v4.append(to: &out, xor: id)
        // port 0x1388 ^ 0x2112, address 0xCB007105 ^ 0x2112A442.
        #expect(out == hex("0001 329a ea12d547"))
        let v6 = STUNAddress("[2001:db8::1]:5000")!
        out = []
        v6.append(to: &out, xor: id)
        #expect(out == hex("0002 329a 0113a9fa 01020304 05060708 090a0b0d"))
        for address in [v4, v6, STUNAddress("[::ffff:10.0.0.1]:1")!, STUNAddress("0.0.0.0:0")!] {
            let message = STUNMessage(
                type: .dataIndication, transactionID: id, attributes: [.xorPeerAddress(address), .data([1, 2, 3])])
            let parsed = try STUNMessage(parsing: try message.encoded())
            #expect(parsed == message)
        }
    }

    @Test("IP text forms parse strictly and print in RFC 5952 form")
    func ipText() {
        #expect(STUNAddress(host: "::", port: 1)?.host == "::")
        #expect(STUNAddress(host: "::1", port: 1)?.host == "::1")
        #expect(STUNAddress(host: "2001:0db8:0:0:1:0:0:1", port: 1)?.host == "2001:db8::1:0:0:1")
        #expect(STUNAddress(host: "::ffff:127.0.0.1", port: 1)?.host == "::ffff:127.0.0.1")
        #expect(STUNAddress(host: "64:ff9b::10.0.0.1", port: 1)?.host == "64:ff9b::a00:1")
        for bad in [
            "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", ":::", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "",
        ] {
            #expect(STUNAddress(host: bad, port: 1) == nil, "\(bad)")
        }
        #expect(STUNAddress("[::1]:80")?.port == 80)
        #expect(STUNAddress("1.2.3.4") == nil)
    }

    @Test("framing errors are reported, never trapped")
    func framingErrors() {
        let valid = RFC5769.ipv4Response
        #expect(throws: STUNParseError.tooShort(19)) { try STUNMessage(parsing: Array(valid.prefix(19))) }
        var bad = valid
        bad[0] |= 0x40
        #expect(throws: STUNParseError.notSTUN) { try STUNMessage(parsing: bad) }
        bad = valid
        bad[4] = 0
        #expect(throws: (any Error).self) { try STUNMessage(parsing: bad) }
        bad = valid
        bad[3] = 0x3d
        #expect(throws: STUNParseError.lengthNotMultipleOfFour(0x3d)) { try STUNMessage(parsing: bad) }
        #expect(throws: (any Error).self) { try STUNMessage(parsing: valid + [0, 0, 0, 0]) }
        // An attribute length that runs past the end.
        bad = valid
        bad[22] = 0x40
        #expect(throws: STUNParseError.truncatedAttribute(offset: 20)) { try STUNMessage(parsing: bad) }
        // Something after FINGERPRINT.
        var extended = valid + hex("80220000")
        extended[3] += 4
        #expect(throws: STUNParseError.attributeAfterFingerprint(.software)) { try STUNMessage(parsing: extended) }
    }

    @Test("seeded fuzz: random and mutated input never traps, and what parses re-encodes to something that parses")
    func fuzz() throws {
        var rng = SeededGenerator(seed: 0x5EED_7000)
        let corpus = [RFC5769.request, RFC5769.ipv4Response, RFC5769.ipv6Response, RFC5769.longTermRequest]
        var parsedCount = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                let count = Int.random(in: 0..<120, using: &rng)
                bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if count >= 8, Bool.random(using: &rng) {
                    bytes[0] &= 0x3F
                    bytes.replaceSubrange(4..<8, with: [0x21, 0x12, 0xa4, 0x42])
                    let length = count - 20
                    if length >= 0 {
                        bytes[2] = UInt8(length >> 8)
                        bytes[3] = UInt8(length & 0xFF)
                    }
                }
            } else {
                bytes = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let index = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[index] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            _ = STUNMessage.verifyFingerprint(bytes)
            _ = STUNMessage.verifyMessageIntegrity(bytes, key: [1, 2, 3])
            _ = ChannelData(parsing: bytes)
            guard let message = try? STUNMessage(parsing: bytes) else { continue }
            parsedCount += 1
            if let encoded = try? message.encoded() {
                #expect(try STUNMessage(parsing: encoded) == message)
            }
        }
        #expect(parsedCount > 100)
    }
}
