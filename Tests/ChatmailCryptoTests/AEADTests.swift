import ChatmailCrypto
import Testing

@Suite("AEAD")
struct AEADTests {
    // RFC 8439 §2.8.2.
    static let rfc8439Key = run(0x80, through: 0x9f)
    static let rfc8439Nonce = hex("07000000 4041424344454647")
    static let rfc8439AAD = hex("50515253c0c1c2c3c4c5c6c7")
    static let rfc8439Plaintext = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
            .utf8)
    static let rfc8439Ciphertext = hex(
        """
        d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
        3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
        92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
        3ff4def08e4b7a9de576d26586cec64b6116
        """)
    static let rfc8439Tag = hex("1ae10b594f09e26a7e902ecbd0600691")

    // McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 3, 4, 15, 16.
    static let gcmKey = hex("feffe9928665731c6d6a8f9467308308")
    static let gcmNonce = hex("cafebabefacedbaddecaf888")
    static let gcmAAD = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    static let gcmPlaintext = hex(
        """
        d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
        1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255
        """)

    @Test("ChaCha20-Poly1305, RFC 8439 §2.8.2: seal gives the published ciphertext and tag")
    func rfc8439Seal() throws {
        let aead = try AEAD(.chacha20Poly1305, key: Self.rfc8439Key)
        let sealed = try aead.seal(nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD, plaintext: Self.rfc8439Plaintext)
        #expect(sealed == Self.rfc8439Ciphertext + Self.rfc8439Tag)
    }

    @Test("ChaCha20-Poly1305, RFC 8439 §2.8.2: open recovers the plaintext; flipped bits fail")
    func rfc8439Open() throws {
        let aead = try AEAD(.chacha20Poly1305, key: Self.rfc8439Key)
        let sealed = Self.rfc8439Ciphertext + Self.rfc8439Tag
        #expect(
            try aead.open(nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD, ciphertextAndTag: sealed)
                == Self.rfc8439Plaintext)
        for bit in [0, 7, 8 * 50 + 3, 8 * 113 + 7, 8 * 114, 8 * 129 + 7] {  // ciphertext bits, then tag bits
            var tampered = sealed
            tampered[bit / 8] ^= 1 << (bit % 8)
            #expect(throws: CryptoError.authenticationFailed) {
                try aead.open(nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD, ciphertextAndTag: tampered)
            }
        }
        var aad = Self.rfc8439AAD
        aad[0] ^= 1
        #expect(throws: CryptoError.authenticationFailed) {
            try aead.open(nonce: Self.rfc8439Nonce, aad: aad, ciphertextAndTag: sealed)
        }
        // The context is still good after failures.
        #expect(
            try aead.open(nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD, ciphertextAndTag: sealed)
                == Self.rfc8439Plaintext)
    }

    @Test("AES-128-GCM, McGrew–Viega GCM test case 3 (no AAD)")
    func gcmTestCase3() throws {
        let aead = try AEAD(.aes128GCM, key: Self.gcmKey)
        let expected = hex(
            """
            42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
            21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985
            4d5c2af327cd64a62cf35abd2ba6fab4
            """)
        #expect(try aead.seal(nonce: Self.gcmNonce, plaintext: Self.gcmPlaintext) == expected)
        #expect(try aead.open(nonce: Self.gcmNonce, ciphertextAndTag: expected) == Self.gcmPlaintext)
    }

    @Test("AES-128-GCM, McGrew–Viega GCM test case 4 (60 bytes, with AAD)")
    func gcmTestCase4() throws {
        let aead = try AEAD(.aes128GCM, key: Self.gcmKey)
        let plaintext = Array(Self.gcmPlaintext.prefix(60))
        let expected = hex(
            """
            42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
            21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091
            5bc94fbc3221a5db94fae95ae7121a47
            """)
        #expect(try aead.seal(nonce: Self.gcmNonce, aad: Self.gcmAAD, plaintext: plaintext) == expected)
        #expect(try aead.open(nonce: Self.gcmNonce, aad: Self.gcmAAD, ciphertextAndTag: expected) == plaintext)
        #expect(throws: CryptoError.authenticationFailed) {
            try aead.open(nonce: Self.gcmNonce, aad: [], ciphertextAndTag: expected)
        }
    }

    @Test("AES-256-GCM, McGrew–Viega GCM test case 15 (no AAD)")
    func gcmTestCase15() throws {
        let aead = try AEAD(.aes256GCM, key: Self.gcmKey + Self.gcmKey)
        let expected = hex(
            """
            522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
            8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad
            b094dac5d93471bdec1a502270e3cc6c
            """)
        #expect(try aead.seal(nonce: Self.gcmNonce, plaintext: Self.gcmPlaintext) == expected)
        #expect(try aead.open(nonce: Self.gcmNonce, ciphertextAndTag: expected) == Self.gcmPlaintext)
    }

    @Test("AES-256-GCM, McGrew–Viega GCM test case 16 (60 bytes, with AAD)")
    func gcmTestCase16() throws {
        let aead = try AEAD(.aes256GCM, key: Self.gcmKey + Self.gcmKey)
        let plaintext = Array(Self.gcmPlaintext.prefix(60))
        let expected = hex(
            """
            522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
            8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
            76fc6ece0f4e1768cddf8853bb2d551b
            """)
        #expect(try aead.seal(nonce: Self.gcmNonce, aad: Self.gcmAAD, plaintext: plaintext) == expected)
        #expect(try aead.open(nonce: Self.gcmNonce, aad: Self.gcmAAD, ciphertextAndTag: expected) == plaintext)
        var tampered = expected
        tampered[expected.count - 1] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) {
            try aead.open(nonce: Self.gcmNonce, aad: Self.gcmAAD, ciphertextAndTag: tampered)
        }
    }

    @Test(
        "In-place buffer API matches the array API; a failed open zeroes the buffer", arguments: AEAD.Algorithm.allCases
    )
    func inPlaceBuffers(algorithm: AEAD.Algorithm) throws {
        let key = Crypto.randomBytes(algorithm.keyLength)
        let nonce = Crypto.randomBytes(12)
        let aad = Array("header".utf8)
        let plaintext = Crypto.randomBytes(16383)
        let aead = try AEAD(algorithm, key: key)
        let expected = try aead.seal(nonce: nonce, aad: aad, plaintext: plaintext)

        // A chunk laid out as in a Shadowsocks frame: payload then tag, in one buffer.
        var frame = plaintext + [UInt8](repeating: 0, count: 16)
        try frame.withUnsafeMutableBytes { frame in
            try nonce.withUnsafeBytes { nonce in
                try aad.withUnsafeBytes { aad in
                    try aead.seal(
                        nonce: nonce, aad: aad, inPlace: UnsafeMutableRawBufferPointer(rebasing: frame[..<16383]),
                        tag: UnsafeMutableRawBufferPointer(rebasing: frame[16383...]))
                }
            }
        }
        #expect(frame == expected)

        var payload = Array(frame[..<16383])
        let tag = Array(frame[16383...])
        try payload.withUnsafeMutableBytes { payload in
            try nonce.withUnsafeBytes { nonce in
                try aad.withUnsafeBytes { aad in
                    try tag.withUnsafeBytes { tag in try aead.open(nonce: nonce, aad: aad, inPlace: payload, tag: tag) }
                }
            }
        }
        #expect(payload == plaintext)

        var corrupted = Array(frame[..<16383])
        let badTag = tag.map { $0 ^ 0x01 }
        #expect(throws: CryptoError.authenticationFailed) {
            try corrupted.withUnsafeMutableBytes { payload in
                try nonce.withUnsafeBytes { nonce in
                    try badTag.withUnsafeBytes { tag in
                        try aead.open(
                            nonce: nonce, aad: UnsafeRawBufferPointer(start: nil, count: 0), inPlace: payload, tag: tag)
                    }
                }
            }
        }
        #expect(corrupted.allSatisfy { $0 == 0 })
    }

    @Test("Empty plaintext and empty AAD still produce and check a tag", arguments: AEAD.Algorithm.allCases)
    func emptyPlaintext(algorithm: AEAD.Algorithm) throws {
        let aead = try AEAD(algorithm, key: [UInt8](repeating: 7, count: algorithm.keyLength))
        let nonce = [UInt8](repeating: 0, count: 12)
        let tagOnly = try aead.seal(nonce: nonce, plaintext: [])
        #expect(tagOnly.count == 16)
        #expect(try aead.open(nonce: nonce, ciphertextAndTag: tagOnly) == [])
        #expect(try aead.seal(nonce: nonce, aad: [1], plaintext: []) != tagOnly)
        #expect(throws: CryptoError.authenticationFailed) {
            try aead.open(nonce: nonce, ciphertextAndTag: Array(tagOnly.dropLast()))
        }
    }

    @Test("Wrong key, nonce or tag lengths throw instead of trapping", arguments: AEAD.Algorithm.allCases)
    func badLengths(algorithm: AEAD.Algorithm) throws {
        let n = algorithm.keyLength
        #expect(throws: CryptoError.invalidKeyLength(expected: n, actual: n - 1)) {
            try AEAD(algorithm, key: [UInt8](repeating: 0, count: n - 1))
        }
        #expect(throws: CryptoError.invalidKeyLength(expected: n, actual: 0)) { try AEAD(algorithm, key: [UInt8]()) }
        let aead = try AEAD(algorithm, key: [UInt8](repeating: 0, count: n))
        #expect(throws: CryptoError.invalidNonceLength(expected: 12, actual: 24)) {
            try aead.seal(nonce: [UInt8](repeating: 0, count: 24), plaintext: [1, 2, 3])
        }
        #expect(throws: CryptoError.invalidNonceLength(expected: 12, actual: 0)) {
            try aead.open(nonce: [], ciphertextAndTag: [UInt8](repeating: 0, count: 20))
        }
        var data: [UInt8] = [1, 2, 3]
        let nonce = [UInt8](repeating: 0, count: 12)
        var shortTag = [UInt8](repeating: 0, count: 8)
        #expect(throws: CryptoError.invalidTagLength(expected: 16, actual: 8)) {
            try data.withUnsafeMutableBytes { data in
                try nonce.withUnsafeBytes { nonce in
                    try shortTag.withUnsafeMutableBytes { tag in
                        try aead.seal(
                            nonce: nonce, aad: UnsafeRawBufferPointer(start: nil, count: 0), inPlace: data, tag: tag)
                    }
                }
            }
        }
        #expect(throws: CryptoError.invalidTagLength(expected: 16, actual: 8)) {
            try data.withUnsafeMutableBytes { data in
                try nonce.withUnsafeBytes { nonce in
                    try shortTag.withUnsafeBytes { tag in
                        try aead.open(
                            nonce: nonce, aad: UnsafeRawBufferPointer(start: nil, count: 0), inPlace: data, tag: tag)
                    }
                }
            }
        }
        #expect(data == [1, 2, 3])
        #expect(throws: CryptoError.authenticationFailed) { try aead.open(nonce: nonce, ciphertextAndTag: [1, 2, 3]) }
        #expect(CryptoError.authenticationFailed.description.contains("authentication failed"))
    }

    @Test(
        "Many chunks through one instance match fresh instances (context reuse, counter nonces)",
        arguments: AEAD.Algorithm.allCases)
    func contextReuse(algorithm: AEAD.Algorithm) throws {
        let key = Crypto.randomBytes(algorithm.keyLength)
        let reused = try AEAD(algorithm, key: key)
        let opener = try AEAD(algorithm, key: key)
        for counter in 0..<64 {
            let nonce = (0..<12).map { $0 == 0 ? UInt8(counter) : 0 }
            let plaintext = Crypto.randomBytes(counter * 37)
            let sealed = try reused.seal(nonce: nonce, plaintext: plaintext)
            #expect(sealed == (try AEAD(algorithm, key: key).seal(nonce: nonce, plaintext: plaintext)))
            #expect(try opener.open(nonce: nonce, ciphertextAndTag: sealed) == plaintext)
        }
    }
}
