/// The places for connections still in their handshake, shared by source so that a few addresses cannot take
/// them all: each address, and each /24 (IPv4) or /64 (IPv6) network, may hold at most its cap scaled by the
/// share of places still free (rounded up, so a source holding none always gets one while any is free).
///
/// With `total` places and a network cap of `P`, `N` networks that keep opening settle where each holds about
/// `P · free / total`, i.e. they leave `total / (1 + N · P / total)` places free for everyone else: 41 networks
/// with the defaults (1024, 128) leave about 170, and a newcomer still gets up to `⌈P · free / total⌉`.
public struct HalfOpenBudget: Sendable {
    public let total: Int
    public let perAddress: Int
    public let perNetwork: Int
    public private(set) var used = 0
    private var byAddress: [IPAddress: Int] = [:]
    private var byNetwork: [IPAddress: Int] = [:]

    public init(total: Int, perAddress: Int, perNetwork: Int) {
        precondition(total > 0 && perAddress > 0 && perNetwork > 0)
        self.total = total
        self.perAddress = perAddress
        self.perNetwork = perNetwork
    }

    /// The /24 or /64 `address` belongs to (IPv4-mapped IPv6 addresses count as IPv4).
    public static func network(of address: IPAddress) -> IPAddress {
        let address = address.normalized
        if address.isIPv4 { return IPAddress(v4: Array(address.bytes.prefix(3)) + [0]) }
        return IPAddress(v6: Array(address.bytes.prefix(8)) + [UInt8](repeating: 0, count: 8))
    }

    /// How many places a source with cap `cap` may hold now.
    func share(_ cap: Int) -> Int {
        let free = total - used
        return (cap * free + total - 1) / total
    }

    /// Takes a place for a connection from `address`; false when the budget, or this source's share of it, is
    /// used up.
    public mutating func admit(_ address: IPAddress) -> Bool {
        let address = address.normalized
        let network = Self.network(of: address)
        let fromAddress = byAddress[address, default: 0]
        let fromNetwork = byNetwork[network, default: 0]
        guard used < total, fromAddress < min(perAddress, share(perAddress)),
            fromNetwork < min(perNetwork, share(perNetwork))
        else { return false }
        used += 1
        byAddress[address] = fromAddress + 1
        byNetwork[network] = fromNetwork + 1
        return true
    }

    /// Gives back the place a connection from `address` held.
    public mutating func release(_ address: IPAddress) {
        let address = address.normalized
        guard let fromAddress = byAddress[address] else { return }
        let network = Self.network(of: address)
        used -= 1
        byAddress[address] = fromAddress > 1 ? fromAddress - 1 : nil
        let fromNetwork = byNetwork[network, default: 1]
        byNetwork[network] = fromNetwork > 1 ? fromNetwork - 1 : nil
    }

    /// Places held by `address`, and by its network.
    public func held(by address: IPAddress) -> (address: Int, network: Int) {
        let address = address.normalized
        return (byAddress[address, default: 0], byNetwork[Self.network(of: address), default: 0])
    }
}
