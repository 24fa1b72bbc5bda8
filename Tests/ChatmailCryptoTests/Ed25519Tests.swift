import ChatmailCrypto
import Testing

/// RFC 8032 §7.1, TEST 1–3.
@Suite("Ed25519")
struct Ed25519Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let privateKey: [UInt8]
        let publicKey: [UInt8]
        let message: [UInt8]
        let signature: [UInt8]
        var testDescription: String { name }
    }

    static let vectors = [
        Vector(
            name: "TEST 1 (empty message)",
            privateKey: hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
            publicKey: hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
            message: [],
            signature: hex(
                """
                e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155
                5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b
                """)),
        Vector(
            name: "TEST 2 (one byte)",
            privateKey: hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
            publicKey: hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
            message: hex("72"),
            signature: hex(
                """
                92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
                085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00
                """)),
        Vector(
            name: "TEST 3 (two bytes)",
            privateKey: hex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
            publicKey: hex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"),
            message: hex("af82"),
            signature: hex(
                """
                6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac
                18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a
                """)),
    ]

    @Test("Ed25519, RFC 8032 §7.1: public key and signature from the private key", arguments: vectors)
    func rfc8032Sign(vector: Vector) throws {
        #expect(try Crypto.ed25519PublicKey(privateKey: vector.privateKey) == vector.publicKey)
        #expect(try Crypto.ed25519Sign(privateKey: vector.privateKey, message: vector.message) == vector.signature)
    }

    @Test("Ed25519, RFC 8032 §7.1: verify accepts the signature, rejects modifications", arguments: vectors)
    func rfc8032Verify(vector: Vector) {
        #expect(Crypto.ed25519Verify(publicKey: vector.publicKey, signature: vector.signature, message: vector.message))
        #expect(
            !Crypto.ed25519Verify(
                publicKey: vector.publicKey, signature: vector.signature, message: vector.message + [0]))
        if !vector.message.isEmpty {
            var message = vector.message
            message[0] ^= 0x01
            #expect(!Crypto.ed25519Verify(publicKey: vector.publicKey, signature: vector.signature, message: message))
        }
        for index in [0, 31, 32, 63] {
            var signature = vector.signature
            signature[index] ^= 0x01
            #expect(!Crypto.ed25519Verify(publicKey: vector.publicKey, signature: signature, message: vector.message))
        }
        var publicKey = vector.publicKey
        publicKey[5] ^= 0x01
        #expect(!Crypto.ed25519Verify(publicKey: publicKey, signature: vector.signature, message: vector.message))
    }

    @Test("Ed25519: wrong-length keys and signatures give false or a thrown error, never a crash")
    func wrongLengths() {
        let vector = Self.vectors[1]
        #expect(
            !Crypto.ed25519Verify(
                publicKey: vector.publicKey.dropLast(), signature: vector.signature, message: vector.message))
        #expect(
            !Crypto.ed25519Verify(
                publicKey: vector.publicKey + [0], signature: vector.signature, message: vector.message))
        #expect(!Crypto.ed25519Verify(publicKey: [UInt8](), signature: vector.signature, message: vector.message))
        #expect(
            !Crypto.ed25519Verify(
                publicKey: vector.publicKey, signature: vector.signature.dropLast(), message: vector.message))
        #expect(!Crypto.ed25519Verify(publicKey: vector.publicKey, signature: [UInt8](), message: vector.message))
        #expect(throws: CryptoError.invalidKeyLength(expected: 32, actual: 64)) {
            try Crypto.ed25519Sign(privateKey: vector.privateKey + vector.publicKey, message: vector.message)
        }
        #expect(throws: CryptoError.invalidKeyLength(expected: 32, actual: 0)) {
            try Crypto.ed25519PublicKey(privateKey: [UInt8]())
        }
    }

    @Test("Ed25519: a fresh random key signs and verifies a longer message")
    func randomKeyRoundTrip() throws {
        let privateKey = Crypto.randomBytes(32)
        let publicKey = try Crypto.ed25519PublicKey(privateKey: privateKey)
        let message = Crypto.randomBytes(1000)
        let signature = try Crypto.ed25519Sign(privateKey: privateKey, message: message)
        #expect(Crypto.ed25519Verify(publicKey: publicKey, signature: signature, message: message))
        #expect(!Crypto.ed25519Verify(publicKey: publicKey, signature: signature, message: message.dropLast()))
    }
}
