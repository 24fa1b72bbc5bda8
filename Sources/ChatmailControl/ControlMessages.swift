import ChatmailMetrics

/// The control channel's messages: one JSON object per line.
///
/// Requests carry an `id` and a `type`; the answer repeats the `id`. Pushes from the supervisor to
/// a child (`turn-secrets`, `reload`) carry a `type` and no `id`.
///
///     {"id":1,"type":"restart","name":"turn","wait":true}
///     {"id":1,"ok":true,"status":{"sidecars":[...]}}
///     {"type":"turn-secrets","secrets":["current","previous"]}
public enum ControlCommand: Sendable, Equatable {
    /// A child introduces itself on its inherited channel.
    case hello(name: String, pid: Int32)
    /// A child listens and serves.
    case ready
    /// The IMAP child asks what to serve as TURN and iroh discovery to `account` (its own TURN credential).
    case discovery(account: String?)
    case status
    case start(name: String, wait: Bool)
    case stop(name: String, wait: Bool)
    case restart(name: String, wait: Bool)
    case enable(name: String)
    case disable(name: String)
    case reload
    case rotateTURNSecret
    /// The Shadowsocks key the supervisor keeps for `method` (made at first use); asked by the
    /// shadowsocks child and by `chatmailctl shadowsocks url`. The answer carries it in `key`.
    case shadowsocksKey(method: String)
    /// A child's answer to `ControlEvent.collectMetrics(scrape:)`: its counters now.
    case metrics(scrape: Int, samples: [Metric])

    var type: String {
        switch self {
        case .hello: "hello"
        case .ready: "ready"
        case .discovery: "discovery"
        case .status: "status"
        case .start: "start"
        case .stop: "stop"
        case .restart: "restart"
        case .enable: "enable"
        case .disable: "disable"
        case .reload: "reload"
        case .rotateTURNSecret: "rotate-turn-secret"
        case .shadowsocksKey: "shadowsocks-key"
        case .metrics: "metrics"
        }
    }
}

public struct ControlRequest: Sendable, Equatable {
    public var id: Int
    public var command: ControlCommand

    public init(id: Int, command: ControlCommand) {
        self.id = id
        self.command = command
    }
}

/// The answer to one request. `error` is set when `ok` is false.
public struct ControlResponse: Sendable, Equatable, Codable {
    public var id: Int
    public var ok: Bool
    public var error: String?
    public var message: String?
    public var status: SupervisorStatus?
    public var discovery: Discovery?
    /// The answer to `shadowsocks-key`.
    public var key: String?

    public init(
        id: Int, ok: Bool = true, error: String? = nil, message: String? = nil, status: SupervisorStatus? = nil,
        discovery: Discovery? = nil, key: String? = nil
    ) {
        self.id = id
        self.ok = ok
        self.error = error
        self.message = message
        self.status = status
        self.discovery = discovery
        self.key = key
    }

    public static func failure(_ id: Int, _ error: String) -> ControlResponse {
        ControlResponse(id: id, ok: false, error: error)
    }
}

/// What the supervisor pushes to a child unasked.
public enum ControlEvent: Sendable, Equatable {
    /// The TURN secrets to accept, current first.
    case turnSecrets([String])
    /// The configuration was reloaded (re-read certificates and the like).
    case reload
    /// A `/metrics` scrape: answer with `ControlCommand.metrics` carrying the same `scrape` number.
    case collectMetrics(scrape: Int)
}

/// What the IMAP child serves through METADATA; a nil entry is left out.
public struct Discovery: Sendable, Equatable, Codable {
    /// `host:port:expiry:password` for `/shared/vendor/deltachat/turn`.
    public var turn: String?
    /// The URL for `/shared/vendor/deltachat/irohrelay`.
    public var irohRelay: String?
    /// `host:tlsport:expiry:password` for `/shared/vendor/deltachat/turns` (TURN over TLS), same credential as `turn`.
    public var turns: String?

    public init(turn: String? = nil, irohRelay: String? = nil, turns: String? = nil) {
        self.turn = turn
        self.irohRelay = irohRelay
        self.turns = turns
    }
}

public struct SupervisorStatus: Sendable, Equatable, Codable {
    public var sidecars: [SidecarStatus]

    public init(sidecars: [SidecarStatus]) { self.sidecars = sidecars }
}

public struct SidecarStatus: Sendable, Equatable, Codable {
    public var name: String
    /// disabled, stopped, not installed, starting, ready, stopping, backoff or config error.
    public var state: String
    public var enabled: Bool
    public var pid: Int32?
    /// Seconds since the current process was spawned.
    public var uptime: Double?
    public var restarts: Int
    /// How the previous process ended, e.g. "exit 1" or "signal 9 (KILL)".
    public var lastExit: String?
    public var listen: [String]
    public var crashLooping: Bool
    /// The ports the child needs open in the firewall, as `3478/udp` (`chatmailctl ports` has their purposes).
    public var ports: [String]
    /// A human note: the next start time in backoff, a readiness timeout, a spawn error.
    public var message: String?

    public init(
        name: String, state: String, enabled: Bool, pid: Int32? = nil, uptime: Double? = nil, restarts: Int = 0,
        lastExit: String? = nil, listen: [String] = [], crashLooping: Bool = false, message: String? = nil,
        ports: [String] = []
    ) {
        self.name = name
        self.state = state
        self.enabled = enabled
        self.pid = pid
        self.uptime = uptime
        self.restarts = restarts
        self.lastExit = lastExit
        self.listen = listen
        self.crashLooping = crashLooping
        self.message = message
        self.ports = ports
    }

    private enum CodingKeys: String, CodingKey {
        case name, state, enabled, pid, uptime, restarts, lastExit, listen, crashLooping, message, ports
    }

    /// Absent values are written as `null`, so every sidecar has every key.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(state, forKey: .state)
        try container.encode(enabled, forKey: .enabled)
        try container.encode(pid, forKey: .pid)
        try container.encode(uptime, forKey: .uptime)
        try container.encode(restarts, forKey: .restarts)
        try container.encode(lastExit, forKey: .lastExit)
        try container.encode(listen, forKey: .listen)
        try container.encode(crashLooping, forKey: .crashLooping)
        try container.encode(message, forKey: .message)
        try container.encode(ports, forKey: .ports)
    }
}
