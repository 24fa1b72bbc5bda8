import ChatmailMetrics

extension RelayCounters {
    /// The metrics, one line each (`MetricDefinition`), named after iroh-relay's `relayserver_*` where they match.
    public static let metrics: [MetricDefinition<RelayCounters>] = [
        .gauge("chatmail_iroh_relayserver_connections", "TCP connections open now.", \.connections),
        .gauge(
            "chatmail_iroh_relayserver_clients", "Authenticated relay clients now, by protocol family.",
            labels: [("protocol", "relay")], \.relaySessions),
        .gauge(
            "chatmail_iroh_relayserver_clients", "Authenticated relay clients now, by protocol family.",
            labels: [("protocol", "legacy")], \.legacySessions),
        .counter(
            "chatmail_iroh_relayserver_send_packets_sent_total", "Packets relayed to a client, by protocol family.",
            labels: [("protocol", "relay")], \.relayPacketsForwarded),
        .counter(
            "chatmail_iroh_relayserver_send_packets_sent_total", "Packets relayed to a client, by protocol family.",
            labels: [("protocol", "legacy")], \.legacyPacketsForwarded),
        .counter("chatmail_iroh_relayserver_bytes_sent_total", "Payload bytes relayed.", \.bytesForwarded),
        .counter(
            "chatmail_iroh_relayserver_send_packets_dropped_total", "Packets dropped, by why.",
            labels: [("reason", "no_destination")], \.packetsDroppedNoDestination),
        .counter(
            "chatmail_iroh_relayserver_send_packets_dropped_total", "Packets dropped, by why.",
            labels: [("reason", "queue_full")], \.packetsDroppedQueueFull),
        .counter(
            "chatmail_iroh_relayserver_ratelimited_connections_total",
            "Connections that sent faster than rate_limit and were slowed down.", \.rateLimited),
        .counter(
            "chatmail_iroh_relayserver_protocol_errors_total",
            "Connections closed for a protocol error or a failed handshake.", \.protocolErrors),
        .counter(
            "chatmail_iroh_relayserver_limit_closures_total",
            "Connections closed by a limit (connections, handshake deadline, write or ping timeout).", \.limitClosures),
        .counter(
            "chatmail_iroh_relayserver_duplicate_keys_total", "Connections with a key already connected.",
            \.duplicateKeys),
        .counter(
            "chatmail_iroh_front_connections_total", "HTTPS front connections, by where they went.",
            labels: [("route", "imap")], \.frontToIMAP),
        .counter(
            "chatmail_iroh_front_connections_total", "HTTPS front connections, by where they went.",
            labels: [("route", "smtp")], \.frontToSMTP),
        .counter(
            "chatmail_iroh_front_connections_total", "HTTPS front connections, by where they went.",
            labels: [("route", "https")], \.frontServedHere),
        .counter(
            "chatmail_iroh_front_connections_total", "HTTPS front connections, by where they went.",
            labels: [("route", "refused")], \.frontRefused),
        .counter(
            "chatmail_iroh_front_new_accounts_total", "POST /new answers, by result.",
            labels: [("result", "given")], \.newAccountsGiven),
        .counter(
            "chatmail_iroh_front_new_accounts_total", "POST /new answers, by result.",
            labels: [("result", "rate_limited")], \.newAccountsRateLimited),
        .counter(
            "chatmail_iroh_front_new_accounts_total", "POST /new answers, by result.",
            labels: [("result", "creation_closed")], \.newAccountsCreationClosed),
    ]
}
