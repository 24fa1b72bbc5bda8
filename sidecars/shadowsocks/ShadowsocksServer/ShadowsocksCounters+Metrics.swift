import ChatmailMetrics

extension ShadowsocksCounters {
    /// The metrics, one line each (`MetricDefinition`).
    public static let metrics: [MetricDefinition<ShadowsocksCounters>] = [
        .counter("chatmail_shadowsocks_connections_total", "Connections accepted.", \.accepted),
        .counter(
            "chatmail_shadowsocks_probes_total",
            "Connections whose request did not authenticate or parse (probes, wrong keys), read until a deadline.",
            \.failedHandshakes),
        .counter("chatmail_shadowsocks_replays_total", "Requests refused as replays of a salt seen before.", \.replays),
        .counter(
            "chatmail_shadowsocks_refused_targets_total", "Authenticated requests for a target not allowed, by why.",
            labels: [("reason", "port")], \.refusedPort),
        .counter(
            "chatmail_shadowsocks_refused_targets_total", "Authenticated requests for a target not allowed, by why.",
            labels: [("reason", "host")], \.refusedHost),
        .counter(
            "chatmail_shadowsocks_over_capacity_total", "Connections closed at once because a cap was reached.",
            \.overCapacity),
        .counter(
            "chatmail_shadowsocks_upstream_failures_total", "Connections to an allowed target that failed.",
            \.upstreamFailures),
        .counter(
            "chatmail_shadowsocks_bytes_total", "Payload bytes relayed, by direction.",
            labels: [("direction", "from_clients")], \.bytesFromClients),
        .counter(
            "chatmail_shadowsocks_bytes_total", "Payload bytes relayed, by direction.",
            labels: [("direction", "to_clients")], \.bytesToClients),
    ]
}
