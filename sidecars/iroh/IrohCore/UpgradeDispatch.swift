/// Which protocol family a `GET /relay` request asks for, decided from its headers alone (notes §4).
public enum UpgradeDispatch: Equatable, Sendable {
    /// `Upgrade: iroh derp http`: family L over the raw stream.
    case legacyStream
    /// A WebSocket without a sub-protocol: family L, one frame per message.
    case legacyWebSocket
    /// A WebSocket offering `iroh-relay-v*`: family W with the highest version offered.
    case relayWebSocket(RelayProtocol.Version)
    /// Refused, with the status, extra headers and a short text for the body.
    case reject(status: Int, headers: [(String, String)], reason: String)

    public static let legacyUpgradeToken = "iroh derp http"
    public static let relayPaths: Set<String> = ["/relay", "/derp"]

    /// Decides for `method` and `uri` (path and optional query) with the request's `headers`.
    public init(method: String, uri: String, headers: [(name: String, value: String)]) {
        func values(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name }.map(\.value)
        }
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
        guard let path, Self.relayPaths.contains(path) else {
            self = .reject(status: 404, headers: [], reason: "not found")
            return
        }
        guard method == "GET" else {
            self = .reject(status: 405, headers: [("Allow", "GET")], reason: "only GET upgrades")
            return
        }
        let upgrade = values("upgrade").flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: " \t").lowercased()
        }
        if upgrade.contains(Self.legacyUpgradeToken) {
            self = .legacyStream
            return
        }
        guard upgrade.contains("websocket") else {
            self = .reject(status: 400, headers: [], reason: "expected an Upgrade to iroh derp http or websocket")
            return
        }
        guard values("sec-websocket-version").map({ $0.trimmingCharacters(in: " \t") }) == ["13"] else {
            self = .reject(
                status: 400, headers: [("Sec-WebSocket-Version", "13")], reason: "unsupported WebSocket version")
            return
        }
        guard values("sec-websocket-key").count == 1 else {
            self = .reject(status: 400, headers: [], reason: "missing Sec-WebSocket-Key")
            return
        }
        let offered = values("sec-websocket-protocol").flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: " \t")
        }
        if offered.isEmpty {
            self = .legacyWebSocket
        } else if let best = offered.compactMap(RelayProtocol.Version.init(subprotocol:)).max() {
            self = .relayWebSocket(best)
        } else {
            self = .reject(status: 400, headers: [], reason: "no supported iroh-relay sub-protocol offered")
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.legacyStream, .legacyStream), (.legacyWebSocket, .legacyWebSocket): true
        case (.relayWebSocket(let a), .relayWebSocket(let b)): a == b
        case (.reject(let a, let x, let r), .reject(let b, let y, let s)):
            a == b && r == s && x.map { [$0.0, $0.1] } == y.map { [$0.0, $0.1] }
        default: false
        }
    }
}

extension StringProtocol {
    /// The string without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        let trimmed = drop { set.contains($0) }
        return String(trimmed.reversed().drop { set.contains($0) }.reversed())
    }
}
