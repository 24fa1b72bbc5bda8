import ChatmailConfig
import Foundation
import Testing

@Suite struct FirewallPortsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load(_ relative: String) throws -> Configuration {
        try Configuration.load(path: root.appendingPathComponent(relative).path)
    }

    /// Rows as `child proto ports` for short comparisons.
    static func rows(_ ports: [FirewallPort]) -> [String] {
        ports.map { "\($0.child) \($0.transport.rawValue) \($0.ports)" }
    }

    @Test func developmentConfiguration() throws {
        let ports = try Self.load("supervisor.conf").firewallPorts()
        #expect(
            Self.rows(ports) == [
                "turn udp 3478", "turn tcp 3478", "turn tcp 5349", "turn udp 49152-65535", "iroh tcp 3340",
                "iroh tcp 3341", "shadowsocks tcp 8388", "imap tcp 1143", "imap tcp 1993",
            ])
        #expect(ports.allSatisfy { $0.isLoopback })
        // Loopback listeners need no rule.
        #expect(!ports.nftRules().contains("dport"))
    }

    @Test func productionExample() throws {
        let configuration = try Self.load("packaging/supervisor.conf")
        let ports = configuration.firewallPorts()
        #expect(
            Self.rows(ports) == [
                "turn udp 3478", "turn tcp 3478", "turn tcp 5349", "turn udp 49152-65535", "iroh tcp 3340",
                "iroh tcp 443", "shadowsocks tcp 8388", "imap tcp 143", "imap tcp 993",
            ])
        #expect(!ports.contains { $0.isLoopback })
        #expect(ports.first { $0.ports == "49152-65535" }?.purpose.contains("relay") == true)
        let nft = ports.nftRules()
        #expect(nft.contains("udp dport 49152-65535 accept comment \"turn: TURN relayed traffic (relay_ports)\""))
        #expect(nft.contains("tcp dport 993 accept") && nft.hasPrefix("# ") && nft.hasSuffix("}\n"))
        #expect(nft.components(separatedBy: " dport ").count - 1 == ports.count)
    }

    /// Disabled in the file, or by the running supervisor's state, which wins over the file.
    @Test func disabledChildrenAreLeftOut() throws {
        var configuration = try Self.load("packaging/supervisor.conf")
        configuration.iroh.child.enabled = false
        configuration.shadowsocks.child.enabled = false
        #expect(!configuration.firewallPorts().contains { $0.child == "iroh" || $0.child == "shadowsocks" })
        #expect(configuration.firewallPorts(enabled: ["iroh": true]).contains { $0.child == "iroh" })
        let runtime = configuration.firewallPorts(enabled: ["turn": false])
        #expect(Set(runtime.map(\.child)) == ["imap"])
    }

    /// TURN over TLS is listed only with a certificate, as chatmail-turn listens on it only then.
    @Test func turnTLSOnlyWithACertificate() throws {
        var configuration = try Self.load("packaging/supervisor.conf")
        configuration.tls.certificates = []
        configuration.tls.selfSigned = false
        #expect(!configuration.firewallPorts(child: "turn").contains { $0.ports == "5349" })
    }
}
