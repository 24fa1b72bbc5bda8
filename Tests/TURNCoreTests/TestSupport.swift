import ChatmailTestSupport

/// Bytes from a hex string; whitespace is ignored, so vectors can be pasted as printed.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.unicodeScalars.filter { !$0.properties.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        UInt8(String(String.UnicodeScalarView(digits[index..<index + 2])), radix: 16)!
    }
}
