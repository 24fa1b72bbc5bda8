/// One port (or port range) a child listens on that clients from outside must reach: what
/// `chatmailctl ports` lists, `status` shows per child, and the firewall has to let in.
public struct FirewallPort: Sendable, Equatable, Codable {
    public enum Transport: String, Sendable, Codable { case tcp, udp }

    public var child: String
    public var transport: Transport
    /// The first and last port (equal for a single port).
    public var port: UInt16
    public var portEnd: UInt16
    /// The address the child binds (a loopback address needs no firewall rule).
    public var address: String
    public var purpose: String

    public init(child: String, transport: Transport, ports: ClosedRange<UInt16>, address: String, purpose: String) {
        self.child = child
        self.transport = transport
        self.port = ports.lowerBound
        self.portEnd = ports.upperBound
        self.address = address
        self.purpose = purpose
    }

    /// `3478` or `49152-65535`, as nftables writes a port or a range.
    public var ports: String { port == portEnd ? "\(port)" : "\(port)-\(portEnd)" }

    /// `3478/udp`, as shown in `status`.
    public var short: String { "\(ports)/\(transport.rawValue)" }

    /// True when only this host can reach it (a 127.x or ::1 listener).
    public var isLoopback: Bool { address.hasPrefix("127.") || address == "::1" || address == "localhost" }

    private enum CodingKeys: String, CodingKey {
        case child, transport = "protocol", port, portEnd, address, purpose
    }
}

extension Configuration {
    /// The ports child `name` needs open, from its section alone (whether it is enabled is the caller's concern):
    /// TURN's UDP and TCP port, its TLS port while it has a certificate, and the relay range; the iroh relay's HTTP
    /// and HTTPS ports; Shadowsocks; IMAP and IMAP over TLS. LMTP and the Unix sockets are for this host only.
    public func firewallPorts(child name: String) -> [FirewallPort] {
        func port(_ transport: FirewallPort.Transport, _ address: ListenAddress, _ purpose: String) -> FirewallPort {
            FirewallPort(
                child: name, transport: transport, ports: address.port...address.port, address: address.host,
                purpose: purpose)
        }
        switch name {
        case "turn":
            var ports = [port(.udp, turn.listen, "STUN/TURN over UDP"), port(.tcp, turn.listen, "STUN/TURN over TCP")]
            if turnServesTLS { ports.append(port(.tcp, turn.tlsListen, "TURN over TLS")) }
            let relayHosts = turn.relayAddresses.joined(separator: ",")
            ports.append(
                FirewallPort(
                    child: name, transport: .udp, ports: turn.relayPorts, address: relayHosts,
                    purpose: "TURN relayed traffic (relay_ports)"))
            return ports
        case "iroh":
            return [port(.tcp, iroh.listen, "iroh relay over HTTP")]
                + (iroh.tlsListen.map { [port(.tcp, $0, "HTTPS front: iroh relay, /new, IMAP and SMTP by ALPN")] } ?? [])
        case "shadowsocks":
            return [port(.tcp, shadowsocks.listen, "Shadowsocks proxy")]
        case "imap":
            return [port(.tcp, imap.listen, "IMAP (STARTTLS)"), port(.tcp, imap.tlsListen, "IMAP over TLS")]
        default:
            return []
        }
    }

    /// The ports the enabled children need open, in start order. `enabled` overrides the file's `enabled` per child
    /// (the running supervisor's state); a child it does not name follows the file.
    public func firewallPorts(enabled: [String: Bool] = [:]) -> [FirewallPort] {
        enabledChildren(overrides: enabled).flatMap { firewallPorts(child: $0) }
    }
}

extension [FirewallPort] {
    /// An nftables table that accepts these ports (loopback listeners left out), to check with `nft -c -f` and
    /// merge into the host's ruleset. Its chain's policy is accept: it opens, it closes nothing by itself.
    public func nftRules(table: String = "chatmail") -> String {
        var lines = [
            "# Ports chatmail needs open; merge the rules into your input chain (policy accept here: this table",
            "# alone drops nothing).",
            "table inet \(table) {",
            "\tchain input {",
            "\t\ttype filter hook input priority filter; policy accept;",
        ]
        for port in self where !port.isLoopback {
            let comment = "\(port.child): \(port.purpose)".replacingOccurrences(of: "\"", with: "'")
            lines.append("\t\t\(port.transport.rawValue) dport \(port.ports) accept comment \"\(comment)\"")
        }
        lines += ["\t}", "}"]
        return lines.joined(separator: "\n") + "\n"
    }
}
