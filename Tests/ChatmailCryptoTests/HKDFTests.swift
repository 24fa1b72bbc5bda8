import ChatmailCrypto
import Testing

@Suite("HKDF")
struct HKDFTests {
    @Test("HKDF-SHA256, RFC 5869 test case 1")
    func rfc5869Case1() throws {
        let okm = try Crypto.hkdf(
            .sha256, key: [UInt8](repeating: 0x0b, count: 22), salt: run(0x00, through: 0x0c),
            info: run(0xf0, through: 0xf9), length: 42)
        #expect(
            hex(okm)
                == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test("HKDF-SHA256, RFC 5869 test case 2 (80-byte inputs, 82-byte output)")
    func rfc5869Case2() throws {
        let okm = try Crypto.hkdf(
            .sha256, key: run(0x00, through: 0x4f), salt: run(0x60, through: 0xaf), info: run(0xb0, through: 0xff),
            length: 82)
        #expect(
            okm
                == hex(
                    """
                    b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c
                    59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71
                    cc30c58179ec3e87c14c01d5c1f3434f1d87
                    """))
    }

    @Test("HKDF-SHA256, RFC 5869 test case 3 (empty salt and info)")
    func rfc5869Case3() throws {
        let okm = try Crypto.hkdf(
            .sha256, key: [UInt8](repeating: 0x0b, count: 22), salt: [UInt8](), info: [UInt8](), length: 42)
        #expect(
            hex(okm)
                == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    @Test("HKDF-SHA1, RFC 5869 test case 4")
    func rfc5869Case4() throws {
        let okm = try Crypto.hkdf(
            .sha1, key: [UInt8](repeating: 0x0b, count: 11), salt: run(0x00, through: 0x0c),
            info: run(0xf0, through: 0xf9), length: 42)
        #expect(
            hex(okm)
                == "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896")
    }

    @Test("HKDF-SHA256 with empty key material (RFC 5869 allows it; Python's hmac module gives the same)")
    func emptyKeyMaterial() throws {
        let okm = try Crypto.hkdf(.sha256, key: [UInt8](), salt: [UInt8](), info: [UInt8](), length: 32)
        #expect(hex(okm) == "eb70f01dede9afafa449eee1b1286504e1f62388b3f7dd4f956697b0e828fe18")
    }

    @Test("HKDF output length bounds: 0 is empty, above 255 × HashLen or negative throws")
    func outputLengthBounds() throws {
        let key = [UInt8](repeating: 1, count: 16)
        #expect(try Crypto.hkdf(.sha1, key: key, salt: [UInt8](), info: [UInt8](), length: 0) == [])
        #expect(try Crypto.hkdf(.sha1, key: key, salt: [UInt8](), info: [UInt8](), length: 255 * 20).count == 5100)
        #expect(throws: CryptoError.invalidOutputLength(requested: 5101, maximum: 5100)) {
            try Crypto.hkdf(.sha1, key: key, salt: [UInt8](), info: [UInt8](), length: 5101)
        }
        #expect(throws: CryptoError.invalidOutputLength(requested: -1, maximum: 8160)) {
            try Crypto.hkdf(.sha256, key: key, salt: [UInt8](), info: [UInt8](), length: -1)
        }
    }
}
