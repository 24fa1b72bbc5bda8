/// Bytes from a hex string; spaces and newlines are ignored, so vectors can be pasted as printed.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.unicodeScalars.filter { !$0.properties.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        UInt8(String(String.UnicodeScalarView(digits[index..<index + 2])), radix: 16)!
    }
}

/// Lower-case hex of `bytes`, so a failing expectation prints something comparable to the vector.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// The bytes `first`, `first + 1`, … up to and including `last` (RFC vectors often are such runs).
func run(_ first: UInt8, through last: UInt8) -> [UInt8] { Array(first...last) }
