/// What one engine counts (each event loop and UDP shard has its own; the server adds them up).
public struct TURNCounters: Sendable, Equatable {
    /// 401 answers: requests without valid credentials (including the first, credential-less Allocate of
    /// every client, which is how TURN authentication starts).
    public var unauthorized = 0
    /// CreatePermission and ChannelBind refused (403) by the peer policy.
    public var refusedPeers = 0
    /// Allocate refused (486) by a quota: per credential, per client address or in total.
    public var quotaRefusals = 0
    /// Allocations made.
    public var allocations = 0
    /// Relayed data from clients to peers, and from peers to clients: packets and payload bytes.
    public var packetsToPeers = 0
    public var bytesToPeers = 0
    public var packetsFromPeers = 0
    public var bytesFromPeers = 0

    public init() {}

    public static func + (lhs: TURNCounters, rhs: TURNCounters) -> TURNCounters {
        var sum = lhs
        sum.unauthorized += rhs.unauthorized
        sum.refusedPeers += rhs.refusedPeers
        sum.quotaRefusals += rhs.quotaRefusals
        sum.allocations += rhs.allocations
        sum.packetsToPeers += rhs.packetsToPeers
        sum.bytesToPeers += rhs.bytesToPeers
        sum.packetsFromPeers += rhs.packetsFromPeers
        sum.bytesFromPeers += rhs.bytesFromPeers
        return sum
    }
}
