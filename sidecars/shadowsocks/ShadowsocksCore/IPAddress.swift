import Foundation

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address as a value, with the text forms a policy compares.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes in network order.
    public let bytes: [UInt8]

    public init(v4 bytes: [UInt8]) {
        precondition(bytes.count == 4)
        self.bytes = bytes
    }

    public init(v6 bytes: [UInt8]) {
        precondition(bytes.count == 16)
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The address an IPv6 form stands for: an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`)
    /// address becomes the IPv4 address; everything else is itself.
    public var normalized: IPAddress {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }) else { return self }
        let mapped = bytes[10] == 0xFF && bytes[11] == 0xFF
        let compatible = bytes[10] == 0 && bytes[11] == 0 && !bytes[12..<15].allSatisfy { $0 == 0 }
        return mapped || compatible ? IPAddress(v4: Array(bytes[12..<16])) : self
    }

    /// 0.0.0.0 or `::` (after normalisation): never a destination.
    public var isUnspecified: Bool { normalized.bytes.allSatisfy { $0 == 0 } }

    /// Parses a strict dotted quad (no leading zeros, no short forms) or an IPv6 literal (RFC 4291 text forms,
    /// optionally in brackets, with an embedded dotted quad allowed at the end). Nil for anything else.
    public init?(parsing text: some StringProtocol) {
        var text = Substring(text)
        if text.first == "[" && text.last == "]" { text = text.dropFirst().dropLast() }
        if let v4 = Self.parseIPv4(text) {
            self.bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            self.bytes = v6
        } else {
            return nil
        }
    }

    private static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let value = UInt8(part)
            else { return nil }
            out.append(value)
        }
        return out
    }

    private static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            guard !part.isEmpty else { return [] }
            var out: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = parseIPv4(piece) {
                    out += v4
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                    let value = UInt16(piece, radix: 16)
                else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
