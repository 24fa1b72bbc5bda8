import ChatmailConfig
import Testing

@Suite struct TURNConfigurationTests {
    let path = "/etc/chatmail/supervisor.conf"

    @Test func defaults() throws {
        let turn = try Configuration.parse(
            "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"http://x\"", path: path
        ).turn
        #expect(turn.relayAddresses == ["0.0.0.0"])
        #expect(turn.externalAddresses.isEmpty && turn.allowedPeers.isEmpty && turn.deniedPeers.isEmpty)
        #expect(
            turn.maxAllocationsPerUser == 10 && turn.maxAllocationsPerAddress == 64 && turn.maxAllocations == 50_000)
        #expect(turn.maxPermissions == 32 && turn.maxLifetime == 3600 && turn.bandwidthLimit == 20_000)
        #expect(turn.software == "" && turn.secrets.isEmpty && turn.threads == 0)
    }

    @Test func everyKey() throws {
        let turn = try Configuration.parse(
            """
            [turn]
            host = "turn.example.org"
            relay_addresses = ["10.0.0.5", "2001:db8::5"]
            external_addresses = ["203.0.113.5"]
            allowed_peers = ["10.9.0.0/16"]
            denied_peers = ["8.8.4.0/24", "2001:db8:1::/48"]
            max_allocations_per_user = 3
            max_allocations_per_address = 7
            max_allocations = 100
            max_permissions = 8
            max_lifetime = 1200
            bandwidth_limit = 0
            software = "chatmail"
            secret = ["new", "old"]
            threads = 2
            [iroh]
            url = "http://x"
            """, path: path
        ).turn
        #expect(turn.relayAddresses == ["10.0.0.5", "2001:db8::5"] && turn.externalAddresses == ["203.0.113.5"])
        #expect(turn.allowedPeers == ["10.9.0.0/16"] && turn.deniedPeers.count == 2)
        #expect(turn.maxAllocationsPerUser == 3 && turn.maxAllocationsPerAddress == 7 && turn.maxAllocations == 100)
        #expect(turn.maxPermissions == 8 && turn.maxLifetime == 1200 && turn.bandwidthLimit == 0)
        #expect(turn.software == "chatmail" && turn.secrets == ["new", "old"] && turn.threads == 2)
    }

    @Test func errors() {
        for (text, expected) in [
            ("relay_addresses = [\"1.2.3.4\", \"5.6.7.8\"]", "relay_addresses: expected at most one IPv4 and one IPv6"),
            ("external_addresses = [\"1.2.3.4/8\"]", "external_addresses: expected at most one IPv4 and one IPv6"),
            ("max_lifetime = 10", "max_lifetime: expected an integer from 600 to 86400"),
            ("secret = \"\"", "secret: must not be empty"),
            ("allowed_peers = \"10.0.0.0/8\"", "allowed_peers: expected a list of strings"),
            ("prefer_tls = true", "prefer_tls: needs TURN over TLS"),
        ] {
            do {
                _ = try Configuration.parse("[turn]\nhost = \"t\"\n\(text)\n[iroh]\nurl = \"http://x\"", path: path)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.errors.map(\.description).contains { $0.contains("[turn] \(expected)") }, "\(text)")
            }
        }
    }

    /// TURNS discovery: the TLS port defaults to tls_listen's; prefer_tls needs a TLS listener, i.e. a certificate.
    @Test func tlsPortAndPreferTLS() throws {
        let plain = try Configuration.parse(
            "[turn]\nhost = \"t\"\ntls_listen = \"0.0.0.0:443\"\n[iroh]\nurl = \"http://x\"", path: path)
        #expect(plain.turn.tlsPort == 443 && !plain.turn.preferTLS && !plain.turnServesTLS)
        let tls = try Configuration.parse(
            "[turn]\nhost = \"t\"\ntls_port = 5350\nprefer_tls = true\n[iroh]\nurl = \"http://x\"\n"
                + "[tls]\nself_signed = true", path: path)
        #expect(tls.turn.tlsPort == 5350 && tls.turn.preferTLS && tls.turnServesTLS)
        // Values only the supervisor hands out restart nothing.
        #expect(
            !tls.childSettingsDiffer(
                from: try Configuration.parse(
                    "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://x\"\n[tls]\nself_signed = true", path: path),
                child: "turn"))
    }
}

@Suite struct LocatedErrorTests {
    @Test("Errors found after loading name the file, the key's line and the key; else the section's line")
    func located() throws {
        let configuration = try Configuration.parse(
            "[supervisor]\n\n[turn]\nhost = \"t.example\"\n\nrelay_addresses = [\"0.0.0.0\"]\n[iroh]\nenabled = false",
            path: "/x/s.conf")
        #expect(
            configuration.error("turn", "relay_addresses", "bad").description
                == "/x/s.conf:6: [turn] relay_addresses: bad")
        #expect(configuration.error("turn", "secret", "missing").description == "/x/s.conf:3: [turn] secret: missing")
        #expect(configuration.error("tls", nil, "none").description == "/x/s.conf: [tls]: none")
    }
}
