import ChatmailTestSupport
import Foundation
import NIOCore

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func hex(_ buffer: ByteBuffer) -> String { hex(buffer.readableBytesView) }

func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0..<($0 + 2)]), radix: 16)! }
}

func run(_ first: UInt8, count: Int) -> [UInt8] { (0..<count).map { first &+ UInt8($0) } }
