/// The PROXY protocol version 2 header (HAProxy's proxy-protocol.txt §2.2), which tells a service behind a
/// forwarding front the client's real address: the front sends it first on the connection it opens, the service
/// reads it before anything else. Only TCP over IPv4 and IPv6 (and LOCAL, which carries no address) are spoken;
/// TLVs are skipped.
public struct ProxyHeader: Sendable, Equatable {
    /// The 12 bytes every version 2 header starts with.
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// An IP address (4 or 16 bytes) and port.
    public struct Address: Sendable, Equatable {
        public var ip: [UInt8]
        public var port: UInt16

        public init(ip: [UInt8], port: UInt16) {
            self.ip = ip
            self.port = port
        }

        /// The address as text: dotted IPv4, or IPv6 in groups of hex (not shortened).
        public var ipText: String {
            if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
            return stride(from: 0, to: ip.count, by: 2).map {
                String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16)
            }
            .joined(separator: ":")
        }
    }

    /// The client (nil for LOCAL: a connection of the front's own, e.g. a health check).
    public var source: Address?
    public var destination: Address?

    public init(source: Address?, destination: Address?) {
        self.source = source
        self.destination = destination
    }

    /// The header for a proxied TCP connection; both addresses must be of one family, else LOCAL is sent.
    public var encoded: [UInt8] {
        guard let source, let destination, source.ip.count == destination.ip.count,
            source.ip.count == 4 || source.ip.count == 16
        else { return Self.signature + [0x20, 0x00, 0, 0] }
        let family: UInt8 = source.ip.count == 4 ? 0x11 : 0x21
        let length = 2 * source.ip.count + 4
        return Self.signature + [0x21, family, UInt8(length >> 8), UInt8(length & 0xFF)] + source.ip + destination.ip
            + [
                UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8),
                UInt8(destination.port & 0xFF),
            ]
    }

    /// Reads a header fed in pieces; bytes after it are left to the caller (`length` says where it ended).
    public struct Reader: Sendable {
        public enum Result: Equatable, Sendable {
            case needMore
            /// The header, which took the first `length` bytes fed.
            case header(ProxyHeader, length: Int)
            case malformed(String)
        }

        /// The longest address block (addresses and TLVs) accepted.
        public let maxLength: Int
        private var buffer: [UInt8] = []
        public private(set) var result = Result.needMore

        public init(maxLength: Int = 512) {
            self.maxLength = maxLength
        }

        @discardableResult
        public mutating func feed(_ bytes: some Collection<UInt8>) -> Result {
            guard result == .needMore else { return result }
            buffer += bytes.prefix(16 + maxLength - buffer.count)
            result = parse()
            return result
        }

        private func parse() -> Result {
            let signed = min(buffer.count, 12)
            guard buffer[0..<signed].elementsEqual(ProxyHeader.signature[0..<signed]) else {
                return .malformed("not a PROXY protocol v2 header")
            }
            guard buffer.count >= 16 else { return .needMore }
            let command = buffer[12]
            guard command >> 4 == 2 else { return .malformed("PROXY protocol version \(command >> 4)") }
            let length = Int(buffer[14]) << 8 | Int(buffer[15])
            guard length <= maxLength else { return .malformed("PROXY header of \(length) bytes") }
            guard buffer.count >= 16 + length else { return .needMore }
            let consumed = 16 + length
            let block = buffer[16..<(16 + length)]
            switch command & 0x0F {
            case 0:  // LOCAL
                return .header(ProxyHeader(source: nil, destination: nil), length: consumed)
            case 1:  // PROXY
                let size: Int
                switch buffer[13] {
                case 0x11: size = 4
                case 0x21: size = 16
                default: return .malformed("PROXY header for family/protocol \(buffer[13])")
                }
                guard length >= 2 * size + 4 else { return .malformed("PROXY header too short for its addresses") }
                let ips = Array(block.prefix(2 * size))
                let ports = Array(block.dropFirst(2 * size).prefix(4))
                return .header(
                    ProxyHeader(
                        source: Address(ip: Array(ips[0..<size]), port: UInt16(ports[0]) << 8 | UInt16(ports[1])),
                        destination: Address(
                            ip: Array(ips[size...]), port: UInt16(ports[2]) << 8 | UInt16(ports[3]))),
                    length: consumed)
            default:
                return .malformed("PROXY command \(command & 0x0F)")
            }
        }
    }
}
