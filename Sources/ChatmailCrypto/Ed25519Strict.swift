/// The encoding checks of strict Ed25519 verification, on the 32-byte little-endian encodings of RFC 8032 §5.1.2
/// (y in the low 255 bits, the sign of x in the top bit) and §5.1.7 (S, a scalar). No curve arithmetic: small-order
/// points are recognised by their encodings, of which there are few.
enum Ed25519Strict {
    /// L = 2^252 + 27742317777372353535851937790883648493, the order of the base point, little-endian.
    static let groupOrder: [UInt8] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    /// The encodings of the eight points of order 1, 2, 4 and 8 (the curve's torsion subgroup), plus the two that
    /// differ only in the sign bit of x = 0 (y = 1 and y = p − 1), which RFC 8032's decoding refuses but some
    /// decoders take. Encodings with y ≥ p are refused separately by `isCanonical`.
    static let smallOrderEncodings: Set<[UInt8]> = {
        let zero = [UInt8](repeating: 0, count: 32)
        var identity = zero
        identity[0] = 1
        // y = p − 1: the point (0, −1) of order 2.
        let minusOne = [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
        // The two y of the four points of order 8.
        let order8a: [UInt8] = [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
            0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
        ]
        let order8b: [UInt8] = [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
            0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
        ]
        // y = 0 are the two points (±√−1, 0) of order 4; each y comes with both signs of x.
        return Set([zero, identity, minusOne, order8a, order8b].flatMap { [$0, withSignBit($0)] })
    }()

    /// Whether `encoding` (32 bytes) may stand for A or R: canonical and not of small order.
    static func isAcceptablePoint(_ encoding: some Collection<UInt8>) -> Bool {
        let bytes = Array(encoding)
        return bytes.count == 32 && isCanonical(bytes) && !smallOrderEncodings.contains(bytes)
    }

    /// Whether the y of `encoding` is below p = 2^255 − 19, i.e. it is not y + p written out for a small y.
    static func isCanonical(_ bytes: [UInt8]) -> Bool {
        // y ≥ p exactly when the top byte (sign bit aside) is 0x7f, the 30 bytes below are 0xff, the lowest ≥ 0xed.
        guard bytes[31] & 0x7f == 0x7f, bytes[1..<31].allSatisfy({ $0 == 0xff }) else { return true }
        return bytes[0] < 0xed
    }

    /// Whether the 32-byte little-endian scalar `s` is below L (RFC 8032 §5.1.7 step 1).
    static func isReducedScalar(_ s: some Collection<UInt8>) -> Bool {
        let bytes = Array(s)
        guard bytes.count == 32 else { return false }
        for index in stride(from: 31, through: 0, by: -1) where bytes[index] != groupOrder[index] {
            return bytes[index] < groupOrder[index]
        }
        return false
    }

    private static func withSignBit(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        bytes[31] |= 0x80
        return bytes
    }
}
