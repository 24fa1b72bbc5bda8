import ChatmailCrypto
import Testing

@Suite("Digests and HMAC")
struct DigestTests {
    @Test("SHA-256, FIPS 180-2 appendix B.1: \"abc\"")
    func sha256FIPS180OneBlock() {
        #expect(
            hex(Crypto.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("SHA-256, FIPS 180-2 appendix B.2: the 448-bit message")
    func sha256FIPS180TwoBlocks() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(hex(Crypto.sha256(message)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("SHA-1, FIPS 180-2 appendix A.1: \"abc\"")
    func sha1FIPS180() {
        #expect(hex(Crypto.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    @Test(
        "MD5, RFC 1321 appendix A.5 test suite",
        arguments: [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ])
    func md5RFC1321(message: String, digest: String) {
        #expect(hex(Crypto.md5(Array(message.utf8))) == digest)
    }

    @Test("Digests accept any byte collection, not only arrays")
    func digestOfNonContiguousCollection() {
        let bytes = "abc".utf8
        #expect(Crypto.sha256(bytes) == Crypto.sha256(Array(bytes)))
        #expect(Crypto.md5(Array("xabcx".utf8).dropFirst().dropLast()) == Crypto.md5(Array(bytes)))
    }

    @Test("HMAC-SHA256, RFC 4231 test case 1")
    func hmacSHA256RFC4231Case1() {
        let mac = Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(hex(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test("HMAC-SHA256, RFC 4231 test case 2 (key shorter than the output)")
    func hmacSHA256RFC4231Case2() {
        let mac = Crypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("HMAC-SHA256, RFC 4231 test case 6 (131-byte key, hashed first)")
    func hmacSHA256RFC4231Case6() {
        let mac = Crypto.hmacSHA256(
            key: [UInt8](repeating: 0xaa, count: 131),
            message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        #expect(hex(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("HMAC-SHA1, RFC 2202 test cases 1 and 2")
    func hmacSHA1RFC2202() {
        let one = Crypto.hmacSHA1(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(hex(one) == "b617318655057264e28bc0b6fb378c8ef146be00")
        let two = Crypto.hmacSHA1(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(hex(two) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        #expect(Crypto.hmac(.sha1, key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)) == two)
    }

    @Test("HMAC-SHA256 with an empty key and message (Python hmac gives the same)")
    func hmacEmptyKey() {
        let mac = Crypto.hmacSHA256(key: [UInt8](), message: Array("abc".utf8))
        #expect(hex(mac) == "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351")
        #expect(Crypto.hmacSHA256(key: [UInt8](), message: [UInt8]()).count == 32)
    }

    @Test("Constant-time comparison")
    func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Crypto.constantTimeEquals([UInt8](), [UInt8]()))
    }

    @Test("Random bytes fill arrays and caller buffers")
    func randomBytes() {
        #expect(Crypto.randomBytes(0) == [])
        #expect(Crypto.randomBytes(32).count == 32)
        #expect(Crypto.randomBytes(32) != Crypto.randomBytes(32))
        var buffer = [UInt8](repeating: 0, count: 64)
        buffer.withUnsafeMutableBytes { Crypto.randomBytes(into: UnsafeMutableRawBufferPointer(rebasing: $0[8..<56])) }
        #expect(buffer[..<8].allSatisfy { $0 == 0 })
        #expect(buffer[56...].allSatisfy { $0 == 0 })
        #expect(buffer[8..<56].contains { $0 != 0 })
        Crypto.randomBytes(into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
    }
}
