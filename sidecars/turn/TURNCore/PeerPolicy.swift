/// An IPv4 or IPv6 prefix such as `10.0.0.0/8` or `fe80::/10`. IPv4 ranges match IPv4 addresses only; the policy
/// canonicalises IPv4-in-IPv6 forms before matching.
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    public let family: STUNAddressFamily
    public let prefixLength: Int
    private let high: UInt64
    private let low: UInt64

    /// `address/prefix`, or a bare address (a single host).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let base = STUNAddress(host: parts[0], port: 0) else { return nil }
        let maximum = base.family == .ipv4 ? 32 : 128
        var prefix = maximum
        if parts.count == 2 {
            guard parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(parts[1]), value <= maximum
            else { return nil }
            prefix = value
        }
        self.init(base, prefixLength: prefix)
    }

    /// The range of `prefixLength` leading bits of `address` (the port is ignored).
    public init(_ address: STUNAddress, prefixLength: Int) {
        family = address.family
        self.prefixLength = prefixLength
        let (h, l) = IPRange.words(address)
        let (maskHigh, maskLow) = IPRange.mask(family: address.family, prefixLength: prefixLength)
        high = h & maskHigh
        low = l & maskLow
    }

    public func contains(_ address: STUNAddress) -> Bool {
        guard address.family == family else { return false }
        let (h, l) = IPRange.words(address)
        let (maskHigh, maskLow) = IPRange.mask(family: family, prefixLength: prefixLength)
        return h & maskHigh == high && l & maskLow == low
    }

    public var description: String {
        let base =
            family == .ipv4
            ? STUNAddress(ipv4: UInt32(truncatingIfNeeded: low), port: 0)
            : STUNAddress(ipv6High: high, low: low, port: 0)
        return "\(base.host)/\(prefixLength)"
    }

    /// IPv4 as the low 32 bits of `low`.
    private static func words(_ address: STUNAddress) -> (UInt64, UInt64) {
        if let v4 = address.ipv4 { return (0, UInt64(v4)) }
        let v6 = address.ipv6!
        return (v6.high, v6.low)
    }

    private static func mask(family: STUNAddressFamily, prefixLength: Int) -> (UInt64, UInt64) {
        func leading(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> bits) }
        if family == .ipv4 {
            return (0, prefixLength == 0 ? 0 : (UInt64(UInt32.max) << (32 - prefixLength)) & 0xFFFF_FFFF)
        }
        return (leading(prefixLength), leading(prefixLength - 64))
    }
}

/// Which peers an allocation may reach (RFC 8656 §21.4, and the CVEs in the notes): special-purpose ranges are
/// denied by default in every encoding, the operator's lists refine that, the server's own addresses are never
/// reachable except as the relayed address of one of our own allocations.
public struct PeerPolicy: Sendable {
    public enum Decision: Hashable, Sendable {
        case allow
        case deny(Reason)
    }

    public enum Reason: Hashable, Sendable {
        /// Port 0 or an address STUN cannot carry.
        case invalidAddress
        /// In the operator's deny list.
        case operatorDenied
        /// One of this server's addresses, and not a relayed address of ours.
        case ownAddress
        /// A special-purpose range (loopback, private, link-local, CGNAT, multicast, metadata, documentation…).
        case specialPurpose(IPRange)
    }

    /// Special-purpose IPv4 ranges denied by default.
    public static let deniedIPv4: [IPRange] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    ].map { IPRange($0)! }

    /// Special-purpose IPv6 ranges denied by default (the IPv4-embedding ones are also canonicalised first).
    public static let deniedIPv6: [IPRange] = [
        "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    ].map { IPRange($0)! }

    /// Peers allowed although a default range denies them (the operator's `allowed_peers`).
    public var allowed: [IPRange]
    /// Peers denied in addition to the defaults (the operator's `denied_peers`).
    public var denied: [IPRange]
    /// This server's own addresses (listeners, relay, external): unreachable as peers unless the operator allows
    /// them explicitly, and their `servicePorts` never.
    public var ownAddresses: [STUNAddress]
    /// Our listening ports (STUN/TURN, TLS), never reachable on our own addresses.
    public var servicePorts: Set<UInt16>

    public init(
        allowed: [IPRange] = [], denied: [IPRange] = [], ownAddresses: [STUNAddress] = [],
        servicePorts: Set<UInt16> = []
    ) {
        self.allowed = allowed
        self.denied = denied
        self.ownAddresses = ownAddresses
        self.servicePorts = servicePorts
    }

    /// The decision for `peer`. `isOwnRelayedAddress` says whether it is the relayed address of one of our
    /// allocations (two users of this server calling each other): that is always allowed, even on loopback.
    public func decide(_ peer: STUNAddress, isOwnRelayedAddress: Bool = false) -> Decision {
        guard peer.port != 0 else { return .deny(.invalidAddress) }
        if isOwnRelayedAddress { return .allow }
        let forms = PeerPolicy.forms(of: peer)
        if forms.contains(where: { form in denied.contains { $0.contains(form) } }) { return .deny(.operatorDenied) }
        if forms.contains(where: { form in ownAddresses.contains { PeerPolicy.sameHost($0, form) } }) {
            let explicitlyAllowed = forms.allSatisfy { form in allowed.contains { $0.contains(form) } }
            if servicePorts.contains(peer.port) || !explicitlyAllowed { return .deny(.ownAddress) }
        }
        for form in forms {
            let list = form.family == .ipv4 ? PeerPolicy.deniedIPv4 : PeerPolicy.deniedIPv6
            if let range = list.first(where: { $0.contains(form) }), !allowed.contains(where: { $0.contains(form) }) {
                return .deny(.specialPurpose(range))
            }
        }
        return .allow
    }

    /// Whether `address` is one of our own hosts, directly or IPv4-mapped; cheap enough for every packet.
    @inline(__always)
    public func isOwnHost(_ address: STUNAddress) -> Bool {
        var index = 0
        while index < ownAddresses.count {
            if PeerPolicy.sameHost(ownAddresses[index], address) { return true }
            index += 1
        }
        if let v6 = address.ipv6, v6.high == 0, v6.low >> 32 == 0xFFFF {
            return isOwnHost(STUNAddress(ipv4: UInt32(truncatingIfNeeded: v6.low), port: address.port))
        }
        return false
    }

    /// The address itself plus every IPv4 address it embeds: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    /// (::a.b.c.d), NAT64 (64:ff9b::/96; the local-use 64:ff9b:1::/48 is denied whole), 6to4 (2002:AABB:CCDD::)
    /// and Teredo (2001:0:SSSS:SSSS:…:~CCCC:~CCCC, both server and client address).
    public static func forms(of address: STUNAddress) -> [STUNAddress] {
        guard let (high, low) = address.ipv6 else { return [address] }
        var forms = [address]
        func v4(_ value: UInt64) {
            forms.append(STUNAddress(ipv4: UInt32(truncatingIfNeeded: value), port: address.port))
        }
        if high == 0, low >> 32 == 0xFFFF || low >> 32 == 0 { v4(low) }
        if high == 0x0064_FF9B_0000_0000, low >> 32 == 0 { v4(low) }
        if high >> 48 == 0x2002 { v4(high >> 16) }
        if high >> 32 == 0x2001_0000 {
            v4(high)
            v4(~low)
        }
        return forms
    }

    static func sameHost(_ a: STUNAddress, _ b: STUNAddress) -> Bool {
        a.family == b.family && a.ipv4 == b.ipv4 && a.ipv6?.high == b.ipv6?.high && a.ipv6?.low == b.ipv6?.low
    }
}
