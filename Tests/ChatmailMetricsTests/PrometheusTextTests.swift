import ChatmailMetrics
import Testing

@Suite struct PrometheusTextTests {
    @Test("One HELP and TYPE per name, samples of a name together, in first-seen order")
    func grouping() {
        let text = PrometheusText.render([
            Metric("a_total", .counter, help: "A.", labels: [("child", "turn")], value: 1),
            Metric("b", .gauge, help: "B.", value: 2.5),
            Metric("a_total", .counter, help: "A.", labels: [("child", "iroh")], value: 3),
        ])
        #expect(
            text == """
                # HELP a_total A.
                # TYPE a_total counter
                a_total{child="turn"} 1
                a_total{child="iroh"} 3
                # HELP b B.
                # TYPE b gauge
                b 2.5

                """)
    }

    @Test("Label values escape backslash, quote and newline; help escapes backslash and newline")
    func escaping() {
        let text = PrometheusText.render([
            Metric("x", .gauge, help: "a\\b\nc \"q\"", labels: [("l", "a\\b\"c\nd")], value: 0)
        ])
        #expect(text.contains("# HELP x a\\\\b\\nc \"q\"\n"))
        #expect(text.contains("x{l=\"a\\\\b\\\"c\\nd\"} 0\n"))
    }

    @Test("Whole numbers exact, fractions as they are, NaN and infinities spelled as the format wants")
    func values() {
        #expect(PrometheusText.format(12_345_678_901) == "12345678901")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.nan) == "NaN")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
    }

    @Test("Names: metric names may hold colons, label names not; no leading digit")
    func names() {
        #expect(PrometheusText.isValidName("chatmail_turn:x_total"))
        #expect(
            !PrometheusText.isValidName("1a") && !PrometheusText.isValidName("a-b") && !PrometheusText.isValidName(""))
        #expect(PrometheusText.isValidName("child", label: true) && !PrometheusText.isValidName("a:b", label: true))
    }

    struct Counters { var accepted = 4, open = 2 }

    @Test("A definition list reads a counters value: one line per metric")
    func definitions() {
        let definitions: [MetricDefinition<Counters>] = [
            .counter("c_total", "Accepted.", \.accepted),
            .gauge("c_open", "Open.", labels: [("kind", "x")], \.open),
        ]
        #expect(
            definitions.samples(Counters()) == [
                Metric("c_total", .counter, help: "Accepted.", value: 4),
                Metric("c_open", .gauge, help: "Open.", labels: [("kind", "x")], value: 2),
            ])
    }
}
