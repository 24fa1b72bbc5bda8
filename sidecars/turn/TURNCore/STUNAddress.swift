/// The address family byte of STUN address attributes and of REQUESTED-ADDRESS-FAMILY /
/// ADDITIONAL-ADDRESS-FAMILY / ADDRESS-ERROR-CODE: 0x01 IPv4, 0x02 IPv6. Other values can arrive in the family
/// attributes (a server answers them with 440), so this is a raw wrapper rather than a closed enum.
public struct STUNAddressFamily: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    public static let ipv4 = STUNAddressFamily(rawValue: 0x01)
    public static let ipv6 = STUNAddressFamily(rawValue: 0x02)

    /// The address length in bytes: 4, 16, or nil for a family STUN does not define.
    public var addressLength: Int? {
        switch rawValue {
        case 0x01: 4
        case 0x02: 16
        default: nil
        }
    }

    public var description: String {
        switch rawValue {
        case 0x01: "IPv4"
        case 0x02: "IPv6"
        default: "family 0x" + String(rawValue, radix: 16)
        }
    }
}

/// A transport address as STUN carries it: IPv4 or IPv6 plus a port.
///
/// Stored as two 64-bit words (IPv4 in the low 32 bits of `low`), so comparing and hashing addresses in the
/// server's permission tables costs a few integer operations.
public struct STUNAddress: Hashable, Sendable, CustomStringConvertible {
    /// `.ipv4` or `.ipv6`, never anything else.
    public let family: STUNAddressFamily
    public var port: UInt16
    /// IPv6 bytes 0...7 (big-endian); 0 for IPv4.
    private let high: UInt64
    /// IPv6 bytes 8...15 (big-endian), or the IPv4 address in the low 32 bits.
    private let low: UInt64

    /// An IPv4 address from its 32-bit value (192.0.2.1 is 0xC000_0201).
    public init(ipv4: UInt32, port: UInt16) {
        self.family = .ipv4
        self.port = port
        self.high = 0
        self.low = UInt64(ipv4)
    }

    /// An IPv6 address from its two 64-bit halves, big-endian.
    public init(ipv6High: UInt64, low: UInt64, port: UInt16) {
        self.family = .ipv6
        self.port = port
        self.high = ipv6High
        self.low = low
    }

    /// An address from 4 (IPv4) or 16 (IPv6) bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>, port: UInt16) {
        let parsed: STUNAddress? = withRawBytes(bytes) { raw in
            switch raw.count {
            case 4: STUNAddress(ipv4: raw.uint32(at: 0), port: port)
            case 16: STUNAddress(ipv6High: raw.uint64(at: 0), low: raw.uint64(at: 8), port: port)
            default: nil
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// An address from an IP literal (`192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`) and a port.
    public init?(host: some StringProtocol, port: UInt16) {
        if let v4 = IPText.parseIPv4(host) {
            self.init(ipv4: v4, port: port)
        } else if let v6 = IPText.parseIPv6(host) {
            self.init(ipv6High: v6.high, low: v6.low, port: port)
        } else {
            return nil
        }
    }

    /// An address from `a.b.c.d:port` or `[v6]:port`, the form `description` prints.
    public init?(_ text: some StringProtocol) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()) else { return nil }
            guard let v6 = IPText.parseIPv6(host) else { return nil }
            self.init(ipv6High: v6.high, low: v6.low, port: port)
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]),
                let v4 = IPText.parseIPv4(text[..<colon])
            else { return nil }
            self.init(ipv4: v4, port: port)
        }
    }

    /// The IPv4 address as a 32-bit value, nil for IPv6.
    public var ipv4: UInt32? { family == .ipv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// The IPv6 address as two big-endian halves, nil for IPv4.
    public var ipv6: (high: UInt64, low: UInt64)? { family == .ipv6 ? (high, low) : nil }

    /// The address bytes in network order: 4 or 16 of them.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        appendAddressBytes(to: &out)
        return out
    }

    func appendAddressBytes(to out: inout [UInt8]) {
        if family == .ipv4 {
            out.appendUInt32(UInt32(truncatingIfNeeded: low))
        } else {
            out.appendUInt64(high)
            out.appendUInt64(low)
        }
    }

    /// The address alone: dotted quad, or RFC 5952 text for IPv6 (`::ffff:a.b.c.d` for IPv4-mapped addresses).
    public var host: String {
        family == .ipv4 ? IPText.formatIPv4(UInt32(truncatingIfNeeded: low)) : IPText.formatIPv6(high: high, low: low)
    }

    /// `192.0.2.1:32853` or `[2001:db8::1]:32853`.
    public var description: String {
        family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)"
    }

    // MARK: Wire format (RFC 8489 §14.1 and §14.2)

    /// The encoded value length: 8 for IPv4, 20 for IPv6.
    var valueLength: Int { family == .ipv4 ? 8 : 20 }

    /// Appends the MAPPED-ADDRESS form (or the XOR-…-ADDRESS form when `xor` is given).
    func append(to out: inout [UInt8], xor transactionID: STUNTransactionID?) {
        out.append(0)
        out.append(family.rawValue)
        guard let transactionID else {
            out.appendUInt16(port)
            appendAddressBytes(to: &out)
            return
        }
        out.appendUInt16(port ^ UInt16(truncatingIfNeeded: STUNMessage.magicCookie >> 16))
        if family == .ipv4 {
            out.appendUInt32(UInt32(truncatingIfNeeded: low) ^ STUNMessage.magicCookie)
        } else {
            let mask = STUNAddress.ipv6Mask(transactionID)
            out.appendUInt64(high ^ mask.high)
            out.appendUInt64(low ^ mask.low)
        }
    }

    /// The XOR mask of an IPv6 address: the magic cookie followed by the transaction ID.
    static func ipv6Mask(_ id: STUNTransactionID) -> (high: UInt64, low: UInt64) {
        (UInt64(STUNMessage.magicCookie) << 32 | UInt64(id.high), id.low)
    }

    /// Decodes an address attribute value; nil if the family is not 1 or 2 or the length does not match it.
    /// The first byte is reserved and ignored.
    init?(decoding value: UnsafeRawBufferPointer, xor transactionID: STUNTransactionID?) {
        guard value.count >= 4 else { return nil }
        let family = value[1]
        let rawPort = value.uint16(at: 2)
        switch (family, value.count) {
        case (0x01, 8):
            let address = value.uint32(at: 4)
            if transactionID != nil {
                self.init(
                    ipv4: address ^ STUNMessage.magicCookie,
                    port: rawPort ^ UInt16(truncatingIfNeeded: STUNMessage.magicCookie >> 16))
            } else {
                self.init(ipv4: address, port: rawPort)
            }
        case (0x02, 20):
            let high = value.uint64(at: 4)
            let low = value.uint64(at: 12)
            if let transactionID {
                let mask = STUNAddress.ipv6Mask(transactionID)
                self.init(
                    ipv6High: high ^ mask.high, low: low ^ mask.low,
                    port: rawPort ^ UInt16(truncatingIfNeeded: STUNMessage.magicCookie >> 16))
            } else {
                self.init(ipv6High: high, low: low, port: rawPort)
            }
        default:
            return nil
        }
    }
}

/// Text forms of IP addresses, written here so TURNCore needs no libc or Foundation.
enum IPText {
    static func parseIPv4(_ text: some StringProtocol) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let byte = UInt8(part), part.count == 1 || part.first != "0"
            else { return nil }
            value = value << 8 | UInt32(byte)
            parts += 1
        }
        return parts == 4 ? value : nil
    }

    static func parseIPv6(_ text: some StringProtocol) -> (high: UInt64, low: UInt64)? {
        let string = String(text)
        guard string.utf8.count <= 45, string.utf8.count >= 2 else { return nil }
        let halves = string.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(truncatingIfNeeded: v4 >> 16))
                    result.append(UInt16(truncatingIfNeeded: v4))
                    continue
                }
                guard (1...4).contains(piece.count), piece.utf8.allSatisfy(\.isHexDigit),
                    let group = UInt16(piece, radix: 16)
                else { return nil }
                result.append(group)
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4Tail: false),
                let tail = groups(halves[1], allowIPv4Tail: true), head.count + tail.count <= 7
            else { return nil }
            all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowIPv4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(all[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(all[index]) }
        return (high, low)
    }

    static func formatIPv4(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    /// RFC 5952: lower-case hex, no leading zeros, the longest run (leftmost on a tie) of two or more zero
    /// groups as `::`, and IPv4-mapped addresses with a dotted tail.
    static func formatIPv6(high: UInt64, low: UInt64) -> String {
        if high == 0, low >> 32 == 0xFFFF {
            return "::ffff:" + formatIPv4(UInt32(truncatingIfNeeded: low))
        }
        var groups: [UInt16] = []
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> shift)) }
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> shift)) }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8, groups[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension String {
    /// Splits at every `::`; a valid IPv6 literal yields one or two parts.
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":", next < endIndex, self[next] == ":" {
                parts.append(self[start..<index])
                start = self.index(after: next)
                index = start
                // A third colon in a row is malformed; leave it for the group parser to refuse.
                continue
            }
            index = next
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
