import ChatmailControl
import ChatmailMetrics

extension Supervisor {
    /// The `/metrics` text: every child's state, restarts and uptime, then its own counters, asked over its
    /// control channel (one request per child, all at once, each waited for at most `timeout`).
    func metricsText(timeout: Duration) async -> String {
        let status = status()
        let answers = await withTaskGroup(of: (String, [Metric]?).self) { group in
            for sidecar in status.sidecars where sidecar.pid != nil {
                group.addTask { (sidecar.name, await self.childMetrics(sidecar.name, timeout: timeout)) }
            }
            var answers: [String: [Metric]] = [:]
            for await (name, samples) in group { answers[name] = samples }
            return answers
        }
        return PrometheusText.render(SupervisorMetrics.samples(status, answers: answers))
    }

    /// Child `name`'s counters, or nil when it has no control channel or does not answer within `timeout`.
    private func childMetrics(_ name: String, timeout: Duration) async -> [Metric]? {
        guard let channel = controlChannel(of: name) else { return nil }
        nextScrape += 1
        let scrape = nextScrape
        return await withCheckedContinuation { continuation in
            metricWaiters[scrape] = (name, continuation)
            push(.collectMetrics(scrape: scrape), to: channel)
            Task {
                try? await Task.sleep(for: timeout)
                self.finishScrape(scrape, from: name, nil)
            }
        }
    }

    /// Ends the wait of `scrape` with `samples` (nil: no answer in time); an answer from another child, or a late
    /// one, is ignored.
    func finishScrape(_ scrape: Int, from name: String, _ samples: [Metric]?) {
        guard metricWaiters[scrape]?.name == name else { return }
        metricWaiters.removeValue(forKey: scrape)!.continuation.resume(returning: samples)
    }
}

/// What the supervisor itself reports, and which children's samples it passes on: pure, for tests.
enum SupervisorMetrics {
    /// Every state `status` shows, so that each child has a series per state (1 for the current one).
    static let states = [
        "disabled", "stopped", "not installed", "config error", "backoff", "starting", "ready", "stopping",
    ]

    /// The supervisor's samples per child, then the counters each child answered with. `answers` holds the
    /// children that answered; a child with a process that did not answer gets `chatmail_child_up 0` and
    /// `chatmail_child_scrape_error 1` and no counters (never zeros). A child may report only names under
    /// `chatmail_<its name>_`.
    static func samples(_ status: SupervisorStatus, answers: [String: [Metric]]) -> [Metric] {
        var samples: [Metric] = []
        for sidecar in status.sidecars {
            let child = [("child", sidecar.name)]
            for state in states {
                samples.append(
                    Metric(
                        "chatmail_child_state", .gauge, help: "1 for the state the child is in, 0 for the others.",
                        labels: child + [("state", state)], value: sidecar.state == state ? 1 : 0))
            }
            let answered = answers[sidecar.name] != nil
            samples += [
                Metric(
                    "chatmail_child_enabled", .gauge, help: "Whether the child is enabled (file or chatmailctl).",
                    labels: child, value: sidecar.enabled ? 1 : 0),
                Metric(
                    "chatmail_child_restarts_total", .counter,
                    help: "Restarts of the child since the supervisor started.", labels: child,
                    value: Double(sidecar.restarts)),
                Metric(
                    "chatmail_child_uptime_seconds", .gauge,
                    help: "Seconds since the child's current process was spawned; 0 without one.", labels: child,
                    value: sidecar.uptime ?? 0),
                Metric(
                    "chatmail_child_up", .gauge,
                    help: "1 when the child answered this scrape's request for its counters in time.", labels: child,
                    value: answered ? 1 : 0),
                Metric(
                    "chatmail_child_scrape_error", .gauge,
                    help: "1 when the child has a process but did not answer for its counters in time.",
                    labels: child, value: sidecar.pid != nil && !answered ? 1 : 0),
            ]
        }
        for sidecar in status.sidecars {
            let prefix = "chatmail_\(sidecar.name)_"
            samples += (answers[sidecar.name] ?? []).filter { $0.name.hasPrefix(prefix) }
        }
        return samples
    }
}
