/// One sample of a Prometheus metric: what a child reports over the control channel and what the supervisor
/// renders on `/metrics`. The help text and type travel with every sample, so a child's list is self-describing.
public struct Metric: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Only goes up (restarts reset it); the name ends in `_total`.
        case counter
        /// Goes up and down.
        case gauge
    }

    public var name: String
    public var kind: Kind
    public var help: String
    /// Label names and values, in the order written.
    public var labels: [(name: String, value: String)]
    public var value: Double

    public init(
        _ name: String, _ kind: Kind, help: String, labels: [(name: String, value: String)] = [], value: Double
    ) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.value = value
    }

    public static func == (lhs: Metric, rhs: Metric) -> Bool {
        lhs.name == rhs.name && lhs.kind == rhs.kind && lhs.help == rhs.help && lhs.value == rhs.value
            && lhs.labels.map(\.name) == rhs.labels.map(\.name) && lhs.labels.map(\.value) == rhs.labels.map(\.value)
    }
}

/// How one metric is read from a counters value: declared once per child in a list, so that adding a counter is
/// one line:
///
///     static let metrics: [MetricDefinition<ShadowsocksCounters>] = [
///         .counter("chatmail_shadowsocks_connections_total", "Connections accepted.", \.accepted),
///     ]
public struct MetricDefinition<Source>: Sendable {
    public var name: String
    public var kind: Metric.Kind
    public var help: String
    public var labels: [(name: String, value: String)]
    public var read: @Sendable (Source) -> Double

    public static func counter(
        _ name: String, _ help: String, labels: [(name: String, value: String)] = [],
        _ read: @escaping @Sendable (Source) -> Int
    ) -> Self {
        Self(name: name, kind: .counter, help: help, labels: labels, read: { Double(read($0)) })
    }

    public static func gauge(
        _ name: String, _ help: String, labels: [(name: String, value: String)] = [],
        _ read: @escaping @Sendable (Source) -> Int
    ) -> Self {
        Self(name: name, kind: .gauge, help: help, labels: labels, read: { Double(read($0)) })
    }
}

extension Array {
    /// The samples these definitions read from `source`.
    public func samples<Source>(_ source: Source) -> [Metric] where Element == MetricDefinition<Source> {
        map { Metric($0.name, $0.kind, help: $0.help, labels: $0.labels, value: $0.read(source)) }
    }
}
