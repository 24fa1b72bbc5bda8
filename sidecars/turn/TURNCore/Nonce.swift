import ChatmailCrypto

/// Stateless nonces (RFC 8489 §9.2): the issue time and a MAC over it and the client's transport address, so the
/// server keeps nothing per unauthenticated client and a nonce is useless from another address.
///
/// Format: 8 hex digits of the issue time (seconds), then 16 hex digits of HMAC-SHA256(key, time ‖ address ‖ port)
/// truncated to 8 bytes. 24 characters in all, which keeps 401 answers small.
public struct NonceAuthority: Sendable {
    public enum Verdict: Hashable, Sendable {
        case valid
        /// Well formed and ours, but older than the lifetime (answer 438 with a fresh one).
        case stale
        /// Not a nonce this server issued for this client (also answered with 438: a client cannot tell).
        case invalid
    }

    private let key: [UInt8]
    /// How long a nonce stays valid, in seconds.
    public let lifetime: Int64

    public init(key: [UInt8], lifetime: Int64 = 600) {
        self.key = key
        self.lifetime = lifetime
    }

    /// A random key: nonces do not survive a restart, which costs clients one 438.
    public static func random(lifetime: Int64 = 600) -> NonceAuthority {
        NonceAuthority(key: Crypto.randomBytes(32), lifetime: lifetime)
    }

    public func issue(for client: STUNAddress, now: Int64) -> String {
        let time = UInt32(truncatingIfNeeded: now)
        return hex32(time) + hex(mac(time: time, client: client))
    }

    public func check(_ nonce: String, for client: STUNAddress, now: Int64) -> Verdict {
        let utf8 = Array(nonce.utf8)
        guard utf8.count == 24, let time = parseHex32(utf8[0..<8]) else { return .invalid }
        guard Crypto.constantTimeEquals(Array(hex(mac(time: time, client: client)).utf8), utf8[8..<24]) else {
            return .invalid
        }
        let age = Int64(UInt32(truncatingIfNeeded: now) &- time)
        return age >= 0 && age < lifetime ? .valid : .stale
    }

    private func mac(time: UInt32, client: STUNAddress) -> ArraySlice<UInt8> {
        var input: [UInt8] = []
        input.appendUInt32(time)
        client.appendAddressBytes(to: &input)
        input.appendUInt16(client.port)
        return Crypto.hmacSHA256(key: key, message: input).prefix(8)
    }

    private func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func hex32(_ value: UInt32) -> String {
        var bytes: [UInt8] = []
        bytes.appendUInt32(value)
        return hex(bytes)
    }

    private func parseHex32(_ digits: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        for digit in digits {
            let nibble: UInt8
            switch digit {
            case 0x30...0x39: nibble = digit - 0x30
            case 0x61...0x66: nibble = digit - 0x61 + 10
            default: return nil
            }
            value = value << 4 | UInt32(nibble)
        }
        return value
    }
}
