/// `GET /generate_204`: the captive-portal check of both generations (notes §5).
public enum CaptivePortal {
    /// The response headers for the request's headers: `X-Iroh-Response` (1.x) and `X-Tailscale-Response`
    /// (0.35), each only for a well-formed challenge of 1–63 characters from `[A-Za-z0-9._-]`.
    public static func responseHeaders(for headers: [(name: String, value: String)]) -> [(String, String)] {
        let pairs = [("x-iroh-challenge", "X-Iroh-Response"), ("x-tailscale-challenge", "X-Tailscale-Response")]
        return pairs.compactMap { request, response in
            guard let challenge = headers.first(where: { $0.name.lowercased() == request })?.value,
                isValidChallenge(challenge)
            else { return nil }
            return (response, "response \(challenge)")
        }
    }

    static func isValidChallenge(_ challenge: String) -> Bool {
        (1...63).contains(challenge.utf8.count)
            && challenge.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }
}
