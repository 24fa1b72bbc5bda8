import ChatmailCrypto
import ChatmailTestSupport
import IrohCore
import NIOCore

/// Bytes from a hex string (spaces allowed).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(bytes: hex(text)) }

/// The vectors' secret key, 32 × 0x2a, and its public key.
let secretKey = [UInt8](repeating: 0x2a, count: 32)
let publicKeyHex = "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61"
let vectorKey = EndpointKey(hex(publicKeyHex))!

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}
