import ChatmailMetrics
import TURNCore

/// The metrics of `TURNServer.metrics()`: the counters of `TURNCounters` and the live allocation count, one
/// line each (`MetricDefinition`), named after coturn's `--prometheus` ones where they match.
public struct TURNMetricsSource: Sendable {
    public var counters: TURNCounters
    public var allocations: Int

    public static let metrics: [MetricDefinition<TURNMetricsSource>] = [
        .gauge("chatmail_turn_total_allocations", "Allocations live now.", \.allocations),
        .counter("chatmail_turn_allocations_created_total", "Allocations made.", \.counters.allocations),
        .counter(
            "chatmail_turn_traffic_peer_sentp_total", "Packets relayed from clients to peers.",
            \.counters.packetsToPeers),
        .counter(
            "chatmail_turn_traffic_peer_sentb_total", "Payload bytes relayed from clients to peers.",
            \.counters.bytesToPeers),
        .counter(
            "chatmail_turn_traffic_peer_rcvp_total", "Packets relayed from peers to clients.",
            \.counters.packetsFromPeers),
        .counter(
            "chatmail_turn_traffic_peer_rcvb_total", "Payload bytes relayed from peers to clients.",
            \.counters.bytesFromPeers),
        .counter(
            "chatmail_turn_unauthorized_total",
            "401 answers (no or wrong credentials; every client's first Allocate gets one by design).",
            \.counters.unauthorized),
        .counter(
            "chatmail_turn_refused_peers_total", "Permissions and channels refused (403) by the peer policy.",
            \.counters.refusedPeers),
        .counter(
            "chatmail_turn_quota_refusals_total", "Allocate requests refused (486) by an allocation quota.",
            \.counters.quotaRefusals),
    ]
}

extension TURNServer {
    /// The samples for the supervisor's `/metrics`.
    public func metrics() async -> [Metric] {
        TURNMetricsSource.metrics.samples(TURNMetricsSource(counters: await counters(), allocations: allocationCount))
    }
}
