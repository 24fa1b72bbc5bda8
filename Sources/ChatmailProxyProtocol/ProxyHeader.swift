#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The PROXY protocol header (HAProxy's proxy-protocol.txt), which tells a service behind a forwarding front the
/// client's real address: the front sends it first on the connection it opens, the service reads it before
/// anything else. Version 2 (§2.2, binary) is what we send; the reader also takes version 1 (§2.1, one text line),
/// which is all nginx's `proxy_protocol` sends. Only TCP over IPv4 and IPv6 (and LOCAL / UNKNOWN, which carry no
/// address) are spoken; TLVs are skipped.
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

    /// Version 1's line: "PROXY " and at most 107 bytes in all, CRLF included.
    static let v1Prefix = Array("PROXY ".utf8)
    static let v1MaxLength = 107

    /// Reads a header (either version) fed in pieces; bytes after it are left to the caller (`length` says where it
    /// ended).
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
            if buffer.first == ProxyHeader.v1Prefix[0] { return parseVersion1() }
            let signed = min(buffer.count, 12)
            guard buffer[0..<signed].elementsEqual(ProxyHeader.signature[0..<signed]) else {
                return .malformed("not a PROXY protocol header")
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

        /// "PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n", or "PROXY UNKNOWN …\r\n".
        private func parseVersion1() -> Result {
            let prefix = ProxyHeader.v1Prefix
            let signed = min(buffer.count, prefix.count)
            guard buffer[0..<signed].elementsEqual(prefix[0..<signed]) else {
                return .malformed("not a PROXY protocol header")
            }
            guard let end = buffer.prefix(ProxyHeader.v1MaxLength).firstIndex(of: 0x0A) else {
                return buffer.count < ProxyHeader.v1MaxLength ? .needMore : .malformed("PROXY v1 line too long")
            }
            guard end >= prefix.count, buffer[end - 1] == 0x0D else { return .malformed("PROXY v1 line without CRLF") }
            let fields = buffer[prefix.count..<(end - 1)].split(separator: 0x20, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            let length = end + 1
            switch fields.first {
            case "UNKNOWN":
                return .header(ProxyHeader(source: nil, destination: nil), length: length)
            case let family? where family == "TCP4" || family == "TCP6":
                let v6 = family == "TCP6"
                guard fields.count == 5, let source = Self.ip(fields[1], v6: v6),
                    let destination = Self.ip(fields[2], v6: v6), let sourcePort = Self.port(fields[3]),
                    let destinationPort = Self.port(fields[4])
                else { return .malformed("malformed PROXY v1 \(family) line") }
                return .header(
                    ProxyHeader(
                        source: Address(ip: source, port: sourcePort),
                        destination: Address(ip: destination, port: destinationPort)),
                    length: length)
            default:
                return .malformed("PROXY v1 line for an unknown protocol")
            }
        }

        /// A textual address of the family (inet_pton's forms), as bytes.
        static func ip(_ text: String, v6: Bool) -> [UInt8]? {
            var bytes = [UInt8](repeating: 0, count: v6 ? 16 : 4)
            let parsed = bytes.withUnsafeMutableBytes { inet_pton(v6 ? AF_INET6 : AF_INET, text, $0.baseAddress) }
            return parsed == 1 ? bytes : nil
        }

        /// A decimal port, 0 to 65535, without sign or leading zeros.
        static func port(_ text: String) -> UInt16? {
            guard let first = text.first, first != "+", first != "0" || text == "0" else { return nil }
            return UInt16(text)
        }
    }
}
