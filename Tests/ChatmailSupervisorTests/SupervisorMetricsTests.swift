import ChatmailControl
import ChatmailMetrics
import Testing

@testable import ChatmailSupervisor

@Suite struct SupervisorMetricsTests {
    let status = SupervisorStatus(sidecars: [
        SidecarStatus(name: "turn", state: "ready", enabled: true, pid: 10, uptime: 12.5, restarts: 2),
        SidecarStatus(name: "iroh", state: "ready", enabled: true, pid: 11, uptime: 3),
        SidecarStatus(name: "shadowsocks", state: "disabled", enabled: false),
    ])

    func value(_ samples: [Metric], _ name: String, _ labels: [(String, String)]) -> Double? {
        samples.first {
            $0.name == name && $0.labels.map(\.name) == labels.map(\.0)
                && $0.labels.map(\.value) == labels.map(\.1)
        }?.value
    }

    @Test("A child that answered is up with its counters; one with a process that did not is a scrape error")
    func answeredOrNot() {
        let counters = [Metric("chatmail_turn_total_allocations", .gauge, help: "A.", value: 5)]
        let samples = SupervisorMetrics.samples(status, answers: ["turn": counters])
        #expect(value(samples, "chatmail_child_up", [("child", "turn")]) == 1)
        #expect(value(samples, "chatmail_child_scrape_error", [("child", "turn")]) == 0)
        #expect(value(samples, "chatmail_turn_total_allocations", []) == 5)
        #expect(value(samples, "chatmail_child_up", [("child", "iroh")]) == 0)
        #expect(value(samples, "chatmail_child_scrape_error", [("child", "iroh")]) == 1)
        #expect(!samples.contains { $0.name.hasPrefix("chatmail_iroh_") }, "no zeros for a child that did not answer")
        #expect(value(samples, "chatmail_child_scrape_error", [("child", "shadowsocks")]) == 0, "no process: no error")
        #expect(value(samples, "chatmail_child_restarts_total", [("child", "turn")]) == 2)
        #expect(value(samples, "chatmail_child_uptime_seconds", [("child", "turn")]) == 12.5)
        #expect(value(samples, "chatmail_child_state", [("child", "turn"), ("state", "ready")]) == 1)
        #expect(value(samples, "chatmail_child_state", [("child", "turn"), ("state", "backoff")]) == 0)
        #expect(value(samples, "chatmail_child_enabled", [("child", "shadowsocks")]) == 0)
    }

    @Test("A child's samples outside its own prefix are dropped")
    func prefix() {
        let samples = SupervisorMetrics.samples(
            status,
            answers: [
                "turn": [
                    Metric("chatmail_child_up", .gauge, help: "forged", labels: [("child", "iroh")], value: 1),
                    Metric("chatmail_iroh_x", .gauge, help: "", value: 1),
                ]
            ])
        #expect(value(samples, "chatmail_child_up", [("child", "iroh")]) == 0)
        #expect(!samples.contains { $0.name == "chatmail_iroh_x" })
    }
}
