import NIOCore

/// The destination a client asks for, in the SOCKS5 address form (RFC 1928 §5) that every Shadowsocks edition
/// puts first in the request: ATYP 1 (IPv4), 3 (length-prefixed name) or 4 (IPv6), then a big-endian port.
public struct TargetAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Host: Sendable, Hashable {
        case ipv4(IPAddress)
        case ipv6(IPAddress)
        /// A name as the client sent it (1–255 bytes, not NUL); never resolved.
        case name([UInt8])
    }

    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// The outcome of parsing the start of a request.
    public enum ParseResult: Sendable, Equatable {
        /// The address is not complete yet.
        case needMore
        /// The address and how many bytes it took.
        case parsed(TargetAddress, length: Int)
        /// Not an address: unknown ATYP, an empty name or a name with a NUL byte.
        case invalid
    }

    /// The longest encoded address: ATYP, length, 255 name bytes, port.
    public static let maximumLength = 1 + 1 + 255 + 2

    /// Parses the address at the start of `bytes` without consuming anything.
    public static func parse(_ bytes: ByteBufferView) -> ParseResult {
        guard let type = bytes.first else { return .needMore }
        let start = bytes.startIndex
        func port(at offset: Int) -> UInt16 {
            UInt16(bytes[start + offset]) << 8 | UInt16(bytes[start + offset + 1])
        }
        switch type {
        case 1:
            guard bytes.count >= 7 else { return .needMore }
            let address = IPAddress(v4: Array(bytes[(start + 1)..<(start + 5)]))
            return .parsed(TargetAddress(host: .ipv4(address), port: port(at: 5)), length: 7)
        case 4:
            guard bytes.count >= 19 else { return .needMore }
            let address = IPAddress(v6: Array(bytes[(start + 1)..<(start + 17)]))
            return .parsed(TargetAddress(host: .ipv6(address), port: port(at: 17)), length: 19)
        case 3:
            guard bytes.count >= 2 else { return .needMore }
            let length = Int(bytes[start + 1])
            guard length > 0 else { return .invalid }
            guard bytes.count >= 4 + length else { return .needMore }
            let name = Array(bytes[(start + 2)..<(start + 2 + length)])
            guard !name.contains(0) else { return .invalid }
            return .parsed(TargetAddress(host: .name(name), port: port(at: 2 + length)), length: 4 + length)
        default:
            return .invalid
        }
    }

    /// `parse` on a byte array (tests, the URL tool).
    public static func parse(_ bytes: [UInt8]) -> ParseResult {
        parse(ByteBuffer(bytes: bytes).readableBytesView)
    }

    /// The encoded form.
    public var encoded: [UInt8] {
        var out: [UInt8]
        switch host {
        case .ipv4(let address): out = [1] + address.bytes
        case .ipv6(let address): out = [4] + address.bytes
        case .name(let name): out = [3, UInt8(name.count)] + name
        }
        return out + [UInt8(port >> 8), UInt8(port & 0xFF)]
    }

    public var description: String {
        switch host {
        case .ipv4(let address): "\(address):\(port)"
        case .ipv6(let address): "[\(address)]:\(port)"
        case .name(let name): "\(String(decoding: name, as: UTF8.self).debugDescription):\(port)"
        }
    }
}
