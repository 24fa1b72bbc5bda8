import ChatmailCrypto
import Testing

/// Known-answer vectors from /work/shared/notes/shadowsocks.md §1.6 (checked there against ss-server 3.3.5 and
/// OpenSSL's EVP_BytesToKey): password "chatmail-test", salt 00 01 02 … (key length), no associated data.
@Suite("Shadowsocks AEAD key schedule (notes §1.6)")
struct ShadowsocksTests {
    static let password = "chatmail-test"
    /// ATYP 3 "mail.example.org" port 993: the first flight's payload.
    static let target = hex("03106d61696c2e6578616d706c652e6f726703e1")

    /// The little-endian counter nonce of Shadowsocks AEAD.
    static func nonce(_ counter: UInt64) -> [UInt8] {
        (0..<12).map { $0 < 8 ? UInt8(truncatingIfNeeded: counter >> (8 * UInt64($0))) : 0 }
    }

    @Test("Shadowsocks EVP_BytesToKey (MD5) master keys, notes §1.6")
    func masterKeys() {
        #expect(
            hex(Crypto.shadowsocksKey(password: Self.password, keyLength: 16)) == "1e64fb345e1e924f304880fbc5233a4a")
        #expect(
            hex(Crypto.shadowsocksKey(password: Self.password, keyLength: 32))
                == "1e64fb345e1e924f304880fbc5233a4a79a36ffe832cd8e8def0e2ed661099d1")
        #expect(Crypto.shadowsocksKey(password: Array(Self.password.utf8), keyLength: 24).count == 24)
        #expect(Crypto.shadowsocksKey(password: Self.password, keyLength: 0) == [])
        // 16 bytes are MD5(password) itself; 32 are D1 || MD5(D1 || password).
        let d1 = Crypto.md5(Array(Self.password.utf8))
        #expect(Crypto.shadowsocksKey(password: Self.password, keyLength: 16) == d1)
        #expect(
            Crypto.shadowsocksKey(password: Self.password, keyLength: 32)
                == d1 + Crypto.md5(d1 + Array(Self.password.utf8)))
    }

    @Test("Shadowsocks HKDF-SHA1 \"ss-subkey\" session subkeys, notes §1.6")
    func sessionSubkeys() throws {
        let master16 = Crypto.shadowsocksKey(password: Self.password, keyLength: 16)
        let subkey16 = try Crypto.hkdf(.sha1, key: master16, salt: run(0, through: 15), info: "ss-subkey", length: 16)
        #expect(hex(subkey16) == "3372e6b13614d0a048246189eb019a20")
        let master32 = Crypto.shadowsocksKey(password: Self.password, keyLength: 32)
        let subkey32 = try Crypto.hkdf(.sha1, key: master32, salt: run(0, through: 31), info: "ss-subkey", length: 32)
        #expect(hex(subkey32) == "5e12525fa9b4cc7a3bdcf818a7a224ab46b20637c92214eec10d2f64f6ca30d0")
    }

    @Test(
        "Shadowsocks AEAD first flight (length chunk, address chunk), notes §1.6",
        arguments: [
            (
                AEAD.Algorithm.aes128GCM, "ed0fdd8c2ba0b167991da458a92e6f615611",
                "8f00462f19d46340d611f6be10a982be6960dbd509686674868f33f96b330bdd539ef3c9"
            ),
            (
                AEAD.Algorithm.aes256GCM, "a87eeae15261237060c364d5830b6a6f4f94",
                "b7fad41afd612bc713acab6fb964ecb117f76445e827ea3de7892da6ad909d432196a972"
            ),
            (
                AEAD.Algorithm.chacha20Poly1305, "c3f89c954aeef69ffff2177a727c50b1cc8d",
                "c28066f4b13c57f183690f5808a730864985d135fa5083bb43bc0475a2074b74c3be79e2"
            ),
        ])
    func firstFlight(algorithm: AEAD.Algorithm, lengthChunk: String, addressChunk: String) throws {
        let length = algorithm.keyLength
        let master = Crypto.shadowsocksKey(password: Self.password, keyLength: length)
        let salt = run(0, through: UInt8(length - 1))
        let subkey = try Crypto.hkdf(.sha1, key: master, salt: salt, info: "ss-subkey", length: length)
        // One instance, two consecutive nonces: the way a connection reuses its contexts.
        let sealer = try AEAD(algorithm, key: subkey)
        let sealedLength = try sealer.seal(nonce: Self.nonce(0), plaintext: [0x00, UInt8(Self.target.count)])
        let sealedAddress = try sealer.seal(nonce: Self.nonce(1), plaintext: Self.target)
        #expect(hex(sealedLength) == lengthChunk)
        #expect(hex(sealedAddress) == addressChunk)

        let opener = try AEAD(algorithm, key: subkey)
        #expect(try opener.open(nonce: Self.nonce(0), ciphertextAndTag: hex(lengthChunk)) == [0x00, 20])
        #expect(try opener.open(nonce: Self.nonce(1), ciphertextAndTag: hex(addressChunk)) == Self.target)
        // Out of order (wrong nonce) fails.
        #expect(throws: CryptoError.authenticationFailed) {
            try opener.open(nonce: Self.nonce(2), ciphertextAndTag: hex(addressChunk))
        }
    }

    @Test("Shadowsocks AEAD UDP packet (aes-256-gcm, 1.2.3.4:53, \"ping\"), notes §1.6")
    func udpPacket() throws {
        let master = Crypto.shadowsocksKey(password: Self.password, keyLength: 32)
        let salt = run(0, through: 31)
        let subkey = try Crypto.hkdf(.sha1, key: master, salt: salt, info: "ss-subkey", length: 32)
        let plaintext: [UInt8] = [0x01, 1, 2, 3, 4, 0x00, 53] + Array("ping".utf8)
        let sealed = try AEAD(.aes256GCM, key: subkey).seal(
            nonce: [UInt8](repeating: 0, count: 12), plaintext: plaintext)
        #expect(hex(sealed) == "a96b3b3cd4e0e04b73cf79b74e4f510dcb898246d45cf0f31998ef")
    }
}
