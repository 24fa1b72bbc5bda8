import Testing

@testable import ChatmailCrypto

/// Strict verification: signatures that satisfy RFC 8032's equation `[S]B = R + [k]A` only because A or R is of
/// small order or written non-canonically, or whose S is not reduced, are refused (the cases of "Taming the many
/// EdDSAs", written out here from the checks). Each vector was made from the equation: with A of small order and
/// k ≡ 0 mod its order, R = [r]B and S = r satisfy it; with R the identity, S = k·a does.
@Suite("Ed25519 strict")
struct Ed25519StrictTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let publicKey: [UInt8]
        let signature: [UInt8]
        let message: [UInt8]
        var testDescription: String { name }
    }

    /// RFC 8032 TEST 1's key pair.
    static let privateKey = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    static let publicKey = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    static let message = Array("small order".utf8)
    static let identity = [1] + [UInt8](repeating: 0, count: 31)
    /// y = p + 1: the identity written non-canonically.
    static let identityPlusP = [0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
    /// TEST 1's key's own signature of `message`.
    static let honestSignature = hex(
        """
        67efe93f3327c006dfa4bf16fb804d09614efa803e61fccdee1f8ed907ec9644
        d5da170685b315c40d73291e822ae5ea4c215eda8a275b1b8baeaadb6438a204
        """)

    static let refused = [
        Vector(
            name: "A and R the identity, S = 0 (signs every message)", publicKey: identity,
            signature: identity + [UInt8](repeating: 0, count: 32), message: message),
        Vector(
            name: "A and R all zero (order 4), S = 0", publicKey: [UInt8](repeating: 0, count: 32),
            signature: [UInt8](repeating: 0, count: 64), message: Array("zero 3".utf8)),
        Vector(
            name: "A of order 8, R = B, S = 1",
            publicKey: hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            signature: hex(
                """
                5866666666666666666666666666666666666666666666666666666666666666
                0100000000000000000000000000000000000000000000000000000000000000
                """), message: message),
        Vector(
            name: "R the identity under an honest key, S = k·a", publicKey: publicKey,
            signature: identity + hex("3c40e760cc147683636d47b8ec9d9da496a2bc2d693e98a454fb93162dc6c40b"),
            message: message),
        Vector(
            name: "S + L in place of S", publicKey: publicKey,
            signature: Array(honestSignature[0..<32])
                + hex("c2ae0d639f16281ce40f21c16024c4ff4c215eda8a275b1b8baeaadb6438a214"), message: message),
        Vector(
            name: "A the identity written as y = p + 1, R = [5]B, S = 5", publicKey: identityPlusP,
            signature: hex(
                """
                edc876d6831fd2105d0b4389ca2e283166469289146e2ce06faefe98b22548df
                0500000000000000000000000000000000000000000000000000000000000000
                """), message: message),
        Vector(
            name: "R the identity written as y = p + 1 under an honest key", publicKey: publicKey,
            signature: identityPlusP + hex("abb2150c0219b40961f69f2ed0456f1cd1d7200c997170ce1d950c9f03828d04"),
            message: message),
    ]

    @Test("the honest signature of the same message verifies, and is what we sign")
    func honest() throws {
        #expect(try Crypto.ed25519Sign(privateKey: Self.privateKey, message: Self.message) == Self.honestSignature)
        #expect(Crypto.ed25519Verify(publicKey: Self.publicKey, signature: Self.honestSignature, message: Self.message))
    }

    @Test(
        "signatures valid only through small order, non-canonical encodings or S >= L are refused", arguments: refused)
    func refusedVectors(vector: Vector) {
        #expect(
            !Crypto.ed25519Verify(publicKey: vector.publicKey, signature: vector.signature, message: vector.message))
    }

    @Test("the small-order list: the eight torsion points and the two with x = 0 and the sign bit set")
    func smallOrderList() {
        #expect(Ed25519Strict.smallOrderEncodings.count == 10)
        #expect(!Ed25519Strict.isAcceptablePoint(Self.identity))
        #expect(Ed25519Strict.isAcceptablePoint(Self.publicKey))
        // The base point is acceptable.
        #expect(Ed25519Strict.isAcceptablePoint([0x58] + [UInt8](repeating: 0x66, count: 31)))
    }

    @Test("encodings with y >= p are refused, y = p - 1 and below are canonical")
    func canonicalEncodings() {
        for offset in 0..<19 {
            for sign: UInt8 in [0, 0x80] {
                let y = [0xed + UInt8(offset)] + [UInt8](repeating: 0xff, count: 30) + [0x7f | sign]
                #expect(!Ed25519Strict.isCanonical(y), "y = p + \(offset)")
                #expect(!Ed25519Strict.isAcceptablePoint(y))
            }
        }
        #expect(Ed25519Strict.isCanonical([0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f]))
        #expect(Ed25519Strict.isCanonical([0xed] + [UInt8](repeating: 0xff, count: 29) + [0xfe, 0x7f]))
    }

    @Test("S must be below L")
    func scalarRange() {
        var lMinusOne = Ed25519Strict.groupOrder
        lMinusOne[0] -= 1
        var lPlusOne = Ed25519Strict.groupOrder
        lPlusOne[0] += 1
        #expect(Ed25519Strict.isReducedScalar(lMinusOne))
        #expect(Ed25519Strict.isReducedScalar([UInt8](repeating: 0, count: 32)))
        #expect(!Ed25519Strict.isReducedScalar(Ed25519Strict.groupOrder))
        #expect(!Ed25519Strict.isReducedScalar(lPlusOne))
        #expect(!Ed25519Strict.isReducedScalar([UInt8](repeating: 0xff, count: 32)))
        #expect(Ed25519Strict.isReducedScalar([UInt8](repeating: 0xff, count: 31) + [0x0f]))
    }
}
