/// The Prometheus text exposition format, version 0.0.4: samples in, text out. Samples of one name are written
/// together under one `# HELP` and `# TYPE` (the first sample's), in the order names first appear.
public enum PrometheusText {
    /// The `Content-Type` of the output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ metrics: [Metric]) -> String {
        var order: [String] = []
        var byName: [String: [Metric]] = [:]
        for metric in metrics {
            if byName[metric.name] == nil { order.append(metric.name) }
            byName[metric.name, default: []].append(metric)
        }
        var text = ""
        for name in order {
            let samples = byName[name]!
            text += "# HELP \(name) \(escapeHelp(samples[0].help))\n"
            text += "# TYPE \(name) \(samples[0].kind.rawValue)\n"
            for sample in samples {
                text += name
                if !sample.labels.isEmpty {
                    text += "{"
                    text += sample.labels.map { "\($0.name)=\"\(escapeLabelValue($0.value))\"" }.joined(separator: ",")
                    text += "}"
                }
                text += " \(format(sample.value))\n"
            }
        }
        return text
    }

    /// A label value: backslash, double quote and line feed escaped.
    public static func escapeLabelValue(_ value: String) -> String { escape(value, quotes: true) }

    /// Help text: backslash and line feed escaped.
    public static func escapeHelp(_ help: String) -> String { escape(help, quotes: false) }

    private static func escape(_ text: String, quotes: Bool) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\"" where quotes: escaped += "\\\""
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Whole numbers without a fraction (counters stay exact), others as Swift prints them; NaN and infinities as
    /// the format spells them.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Whether `name` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`; no colon in label names).
    public static func isValidName(_ name: String, label: Bool = false) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func allowed(_ c: Unicode.Scalar, first: Bool) -> Bool {
            c.isASCII
                && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || (!label && c == ":")
                    || (!first && c >= "0" && c <= "9"))
        }
        return allowed(first, first: true) && name.unicodeScalars.dropFirst().allSatisfy { allowed($0, first: false) }
    }
}
