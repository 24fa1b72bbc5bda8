/// Which targets a client may reach: only this server, by one of its configured names or addresses, on an
/// allowed port; the connection then goes to the configured local address of that port's service. A name
/// the client sends is compared, never resolved, so the proxy cannot be pointed anywhere else.
public struct DestinationPolicy: Sendable, Equatable {
    /// Where an allowed port's connections go: an IP literal (or a name the operator configured) and a port.
    public struct Upstream: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: UInt16

        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Why a target is refused.
    public enum Refusal: String, Error, Sendable, Hashable, CaseIterable {
        /// The port is not in allowed_ports.
        case port
        /// The host is not one of this server's names or addresses (or it is `localhost` or unspecified).
        case host
    }

    /// Lowercased, without a trailing dot; never `localhost` or a name under it.
    public let names: Set<String>
    /// Normalised (IPv4-mapped and IPv4-compatible forms as IPv4); never unspecified.
    public let addresses: Set<IPAddress>
    /// The allowed ports and where each goes.
    public let upstreams: [UInt16: Upstream]

    /// Names that are `localhost` (or under it) and unspecified addresses are dropped: they never name this
    /// server for a client. IP literals given as names count as addresses.
    public init(names: [String], addresses: [IPAddress], upstreams: [UInt16: Upstream]) {
        var nameSet: Set<String> = []
        var addressSet = Set(addresses.map(\.normalized).filter { !$0.isUnspecified })
        for name in names {
            let normalized = Self.normalize(name)
            if let address = IPAddress(parsing: normalized) {
                if !address.isUnspecified { addressSet.insert(address.normalized) }
            } else if !normalized.isEmpty && !Self.isLocalhost(normalized) {
                nameSet.insert(normalized)
            }
        }
        self.names = nameSet
        self.addresses = addressSet
        self.upstreams = upstreams
    }

    /// Where `target` goes, or why it is refused.
    public func decide(_ target: TargetAddress) -> Result<Upstream, Refusal> {
        guard let upstream = upstreams[target.port] else { return .failure(.port) }
        return namesThisServer(target.host) ? .success(upstream) : .failure(.host)
    }

    /// Whether `host` is one of this server's names or addresses.
    public func namesThisServer(_ host: TargetAddress.Host) -> Bool {
        switch host {
        case .ipv4(let address), .ipv6(let address):
            return addresses.contains(address.normalized)
        case .name(let bytes):
            // Delta Chat sends every target as a name, IP literals too.
            guard let text = String(validating: bytes, as: UTF8.self) else { return false }
            let normalized = Self.normalize(text)
            if let address = IPAddress(parsing: normalized) { return addresses.contains(address.normalized) }
            return !Self.isLocalhost(normalized) && names.contains(normalized)
        }
    }

    /// Lowercase (ASCII) without one trailing dot.
    static func normalize(_ name: String) -> String {
        var lowered = String(name.lowercased())
        if lowered.hasSuffix(".") { lowered.removeLast() }
        return lowered
    }

    static func isLocalhost(_ name: String) -> Bool {
        name == "localhost" || name.hasSuffix(".localhost")
    }
}
