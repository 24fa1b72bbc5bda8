import Foundation

extension Crypto {
    /// Standard base64 with padding (RFC 4648 §4).
    public static func base64(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    /// base64url without padding (RFC 4648 §5), for secrets kept as text.
    public static func base64URL(_ bytes: some Collection<UInt8>) -> String {
        base64(bytes).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
