import ChatmailMetrics

extension PushCounters {
    /// The push worker's counters on the supervisor's `/metrics`, one series per outcome.
    public static let metrics: [MetricDefinition<PushCounters>] = [
        .counter(name, help, labels: [("outcome", "sent")], \.sent),
        .counter(name, help, labels: [("outcome", "retried")], \.retried),
        .counter(name, help, labels: [("outcome", "gone")], \.gone),
        .counter(name, help, labels: [("outcome", "dropped")], \.dropped),
    ]

    private static let name = "chatmail_imap_push_posts_total"
    private static let help =
        "Push notification posts, by outcome: sent (200), retried (failed, tried again), gone (410, token deleted), dropped (given up)."
}
