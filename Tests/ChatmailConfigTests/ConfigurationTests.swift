import ChatmailConfig
import Foundation
import Testing

@Suite struct ConfigurationTests {
    let path = "/etc/chatmail/supervisor.conf"

    func errors(_ text: String) -> [String] {
        do {
            _ = try Configuration.parse(text, path: path)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func emptyFileGivesProductionDefaults() throws {
        let configuration = try Configuration.parse(
            "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"https://chat.example.org\"", path: path)
        #expect(configuration.supervisor.stateDir == "/var/lib/chatmail")
        #expect(configuration.supervisor.controlSocket == "/run/chatmail/control.sock")
        #expect(configuration.imap.listen == ListenAddress(host: "0.0.0.0", port: 143))
        #expect(configuration.imap.tlsListen.port == 993)
        #expect(configuration.imap.lmtpListen == nil && configuration.imap.database.isEmpty)
        #expect(configuration.imap.quotaMB == 100 && configuration.imap.maxMessageAgeDays == 20)
        #expect(configuration.imap.maxInactiveDays == 90 && configuration.imap.autoCreateAccounts)
        #expect(configuration.imap.localpartMinLength == 9 && configuration.imap.passwordMinLength == 9)
        #expect(!configuration.imap.plaintextLogin && configuration.imap.startTLS)
        #expect(configuration.turn.listen.port == 3478 && configuration.turn.tlsListen.port == 5349)
        #expect(configuration.turn.port == 3478)
        #expect(configuration.turn.credentialTTL == 5 * 86400)
        #expect(configuration.turn.relayPorts == 49152...65535)
        #expect(configuration.iroh.listen.port == 3340)
        #expect(configuration.shadowsocks.listen.port == 8388)
        #expect(configuration.children.map(\.name) == ["turn", "iroh", "shadowsocks", "imap"])
        #expect(configuration.children.allSatisfy { $0.settings.enabled && $0.settings.command == nil })
        #expect(configuration.imap.child.stopTimeout == 20 && configuration.turn.child.stopTimeout == 5)
    }

    @Test func pushKeysAndTheirURLRule() throws {
        let base = "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"https://chat.example.org\"\n[imap]\n"
        let defaults = try Configuration.parse(base, path: path).imap
        #expect(defaults.push && defaults.pushURL == "https://notifications.delta.chat/notify")
        #expect(defaults.pushRetryBase == 8 && defaults.pushGiveUp == 18000 && defaults.pushTokenDays == 90)
        let custom = try Configuration.parse(
            base + "push = false\npush_url = \"http://127.0.0.1:8080/notify\"\npush_ca_file = \"ca.pem\"\n",
            path: path
        ).imap
        #expect(!custom.push && custom.pushURL == "http://127.0.0.1:8080/notify")
        #expect(custom.pushCAFile == "/etc/chatmail/ca.pem")
        for allowed in [
            "https://notifications.delta.chat/notify", "http://localhost:9/x", "http://[::1]:8/", "http://127.0.0.2/n",
            "HTTPS://Example.org",
        ] {
            #expect(IMAPSection.pushURLAllowed(allowed), "\(allowed)")
        }
        for refused in [
            "http://notifications.delta.chat/notify", "http://10.0.0.1/", "ftp://127.0.0.1/", "https://",
            "http://127.0.0.1.evil.org/",
            "http://user@127.0.0.1/", "notifications.delta.chat",
        ] {
            #expect(!IMAPSection.pushURLAllowed(refused), "\(refused)")
        }
        #expect(errors(base + "push_url = \"http://example.org/notify\"\n").contains { $0.contains("push_url") })
    }

    @Test func theLMTPSocketFollowsTheRuntimeDirectory() throws {
        let base = "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"https://chat.example.org\"\n"
        let defaults = try Configuration.parse(base, path: path)
        #expect(defaults.imap.lmtpSocket == "/run/chatmail/lmtp.sock")
        let moved = try Configuration.parse(base + "[supervisor]\nruntime_dir = \"/srv/run\"", path: path)
        #expect(moved.imap.lmtpSocket == "/srv/run/lmtp.sock")
        let explicit = try Configuration.parse(
            base + "[supervisor]\nruntime_dir = \"/srv/run\"\n[imap]\nlmtp_socket = \"/x/l.sock\"", path: path)
        #expect(explicit.imap.lmtpSocket == "/x/l.sock")
    }

    @Test func theRepositoryDevelopmentConfigIsValidAndLoopbackOnly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let configuration = try Configuration.load(path: root.appendingPathComponent("supervisor.conf").path)
        #expect(configuration.supervisor.stateDir == root.appendingPathComponent(".run/state").path)
        for (_, settings) in configuration.children {
            #expect(settings.listen.allSatisfy { $0.host == "127.0.0.1" })
        }
        #expect(configuration.imap.listen.port == 1143 && configuration.imap.tlsListen.port == 1993)
        #expect(configuration.turn.listen.port == 3478 && configuration.iroh.listen.port == 3340)
        #expect(configuration.shadowsocks.listen.port == 8388)
    }

    @Test func relativePathsAreAnchoredAtTheFile() throws {
        let configuration = try Configuration.parse(
            """
            [supervisor]
            state_dir = "./.run/state"
            [imap]
            command = ["bin/imap", "--verbose"]
            [turn]
            host = "1.2.3.4"
            [iroh]
            url = "http://x"
            """, path: "/srv/chatmail/supervisor.conf")
        #expect(configuration.supervisor.stateDir == "/srv/chatmail/.run/state")
        #expect(configuration.imap.child.command == ["/srv/chatmail/bin/imap", "--verbose"])
    }

    @Test func unknownKeysAndSectionsAreErrorsWithTheirLines() {
        let found = errors(
            """
            [supervisor]
            log_level = "info"

            [turn]
            host = "turn.example.org"
            credential_ttl = "long"
            secert = "x"

            [irohh]
            enabled = true
            """)
        #expect(
            Set(found) == [
                "\(path):6: [turn] credential_ttl: expected an integer from 60 to 31536000",
                "\(path):7: [turn] secert: unknown key",
                "\(path):9: [irohh]: unknown section (known: supervisor, imap, turn, iroh, shadowsocks, tls)",
                "\(path): [iroh] url: required when listen is a wildcard address: the relay URL clients use",
            ])
    }

    @Test func imapSettings() throws {
        let configuration = try Configuration.parse(
            """
            [imap]
            lmtp_listen = "127.0.0.1:2424"
            database = "mail.db"
            mail_domain = "Chat.Example.org"
            comment = "Chatmail server"
            admin = "mailto:root@chat.example.org"
            quota_mb = 5
            plaintext_login = true
            auth_socket = "run/auth"
            min_free_space = "512M"
            [turn]
            host = "t.example"
            [iroh]
            url = "http://r.example"
            """, path: path)
        #expect(configuration.imap.lmtpListen == ListenAddress(host: "127.0.0.1", port: 2424))
        #expect(configuration.imap.database == "/etc/chatmail/mail.db")
        #expect(configuration.imap.mailDomain == "chat.example.org")
        #expect(configuration.imap.comment == "Chatmail server" && configuration.imap.quotaMB == 5)
        #expect(configuration.imap.plaintextLogin)
        #expect(configuration.imap.authSocket == "/etc/chatmail/run/auth")
        #expect(configuration.imap.minFreeSpace == 512 << 20)
        let defaults = try Configuration.parse("[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"", path: path).imap
        #expect(defaults.authSocket == "" && defaults.minFreeSpace == 1 << 30)
    }

    @Test func byteSizes() {
        #expect(IMAPSection.byteSize("0") == 0)
        #expect(IMAPSection.byteSize("1g") == 1 << 30)
        #expect(IMAPSection.byteSize(" 2T ") == 2 << 40)
        #expect(IMAPSection.byteSize("64K") == 65536)
        #expect(IMAPSection.byteSize("123") == 123)
        for bad in ["", "G", "1.5G", "-1G", "1GB", "99999999999T"] { #expect(IMAPSection.byteSize(bad) == nil) }
    }

    @Test(arguments: [
        ("[imap]\nlisten = \"localhost\"", "[imap] listen: expected \"host:port\""),
        ("[imap]\nlisten = \"[::1]:0\"", "[imap] listen: expected \"host:port\""),
        ("[imap]\nenabled = \"yes\"", "[imap] enabled: expected true or false, found string"),
        ("[imap]\ncommand = []", "[imap] command: must not be empty"),
        ("[imap]\ncommand = 5", "[imap] command: expected a program path or a list of strings"),
        ("[imap]\nmail_domain = \"a@b\"", "[imap] mail_domain: must be a domain name"),
        ("[imap]\nlmtp_listen = \"nowhere\"", "[imap] lmtp_listen: expected \"host:port\""),
        (
            "[imap]\nlocalpart_min_length = 10\nlocalpart_max_length = 5",
            "[imap] localpart_max_length: must not be below"
        ),
        ("[imap]\nquota_mb = 0", "[imap] quota_mb"),
        ("[imap]\nmin_free_space = \"lots\"", "[imap] min_free_space: expected a size"),
        ("[imap]\nidle_keepalive = 300", "[imap] idle_keepalive"),
        ("[imap]\nmax_line_lenght = 9000", "[imap] max_line_lenght"),
        ("[turn]\nhost = \"2001:db8::1\"", "[turn] host: must be a DNS name or an IPv4 address"),
        ("[turn]\nrelay_ports = \"60000-50000\"", "[turn] relay_ports: must be \"LOW-HIGH\""),
        ("[supervisor]\nlog_level = \"loud\"", "[supervisor] log_level: expected one of trace, debug"),
        ("[supervisor]\nready_timeout = -1", "[supervisor] ready_timeout: expected a positive number"),
        ("[supervisor]\nrestart_delay_min = 10\nrestart_delay_max = 5", "restart_delay_max: must not be below"),
        ("[tls]\ncertificate = \"a.pem\"", "[tls] key: certificate and key go together"),
        ("[tls]\ncertificate = [\"a.pem\", \"b.pem\"]\nkey = \"a.key\"", "[tls] key: certificate and key go together"),
        ("[tls]\ncertificate = 3\nkey = 4", "[tls] certificate: expected a string or a list of strings"),
        ("[iroh]\nurl = \"ftp://x\"", "[iroh] url: must be an http:// or https:// URL"),
        ("[iroh]\nurl = \"http://r\"\nqueue_size = 0", "[iroh] queue_size: expected an integer from 1 to 65536"),
        ("[iroh]\nurl = \"http://r\"\nmax_packet_size = 70000", "[iroh] max_packet_size: expected an integer"),
        ("[iroh]\nurl = \"http://r\"\nwrite_timeout = 0", "[iroh] write_timeout: expected a positive number"),
        ("[iroh]\nurl = \"http://r\"\ntls_listen = \"x\"", "[iroh] tls_listen: expected \"host:port\""),
        ("[iroh]\nurl = \"http://r\"\nratelimit = 1", "[iroh] ratelimit: unknown key"),
        ("supervisor = 3", "[supervisor]: must be a table"),
    ])
    func badValuesAreNamed(text: String, expected: String) {
        // The discovery settings an enabled TURN and iroh need, unless the case is about them.
        var full = text
        if !text.contains("[turn]") { full += "\n[turn]\nhost = \"t.example\"" }
        if !text.contains("[iroh]") { full += "\n[iroh]\nurl = \"http://r.example\"" }
        let found = errors(full)
        #expect(found.contains { $0.contains(expected) }, "\(found)")
    }

    /// The TOML library aborts on these instead of reporting an error; we must refuse them first.
    @Test(arguments: ["[", "[ ", "[#", "[[", "[.", "[=", " [\t#"])
    func malformedHeadersAreErrorsNotCrashes(header: String) {
        let found = errors("[turn]\nhost = \"t\"\n\(header)\n[iroh]\nurl = \"http://r\"\n")
        #expect(found == ["\(path):3: TOML syntax: malformed table header"])
    }

    @Test func tlsTakesOneOrSeveralCertificates() throws {
        let base = "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n"
        let one = try Configuration.parse(base + "[tls]\ncertificate = \"c.pem\"\nkey = \"/k.pem\"", path: path)
        #expect(one.tls.certificates == ["/etc/chatmail/c.pem"] && one.tls.keys == ["/k.pem"])
        let two = try Configuration.parse(
            base + "[tls]\ncertificate = [\"/a.pem\", \"/b.pem\"]\nkey = [\"/a.key\", \"/b.key\"]", path: path)
        #expect(two.tls.certificates == ["/a.pem", "/b.pem"] && two.tls.keys == ["/a.key", "/b.key"])
    }

    @Test func syntaxErrorsCarryTheirLine() {
        #expect(errors("[turn]\nhost = \"x\"\nport = = 3\n").first?.hasPrefix("\(path):3: TOML syntax:") == true)
    }

    @Test func turnHostDefaultsToAConcreteListenAddress() throws {
        let configuration = try Configuration.parse(
            "[turn]\nlisten = \"192.0.2.7:3478\"\n[iroh]\nlisten = \"192.0.2.7:3340\"", path: path)
        #expect(configuration.turn.host == "192.0.2.7")
        #expect(configuration.iroh.url == "http://192.0.2.7:3340")
    }

    @Test func disabledSidecarsNeedNoDiscoverySettings() throws {
        let configuration = try Configuration.parse("[turn]\nenabled = false\n[iroh]\nenabled = false", path: path)
        #expect(!configuration.turn.child.enabled && !configuration.iroh.child.enabled)
    }

    @Test func childSettingsDifference() throws {
        let base = "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n"
        let a = try Configuration.parse(base, path: path)
        let b = try Configuration.parse(base + "[imap]\nstop_timeout = 3\n", path: path)
        #expect(b.childSettingsDiffer(from: a, child: "imap"))
        #expect(!b.childSettingsDiffer(from: a, child: "turn"))
        let c = try Configuration.parse(
            base.replacingOccurrences(
                of: "host = \"t\"", with: "host = \"t\"\nport = 3479\nenabled = false"
            ).replacingOccurrences(of: "http://r", with: "http://s"), path: path)
        #expect(!c.childSettingsDiffer(from: a, child: "turn"), "the port is discovery only; enabled apart")
        // The child refuses credentials that expire later than the TTL allows, so it needs the TTL.
        let ttl = try Configuration.parse(
            base.replacingOccurrences(of: "host = \"t\"", with: "host = \"t\"\ncredential_ttl = 3600"), path: path)
        #expect(ttl.childSettingsDiffer(from: a, child: "turn"))
        #expect(!c.childSettingsDiffer(from: a, child: "iroh"), "the URL is discovery only")
        // Everything a child reads restarts it: the TURN host (it advertises relayed addresses with it),
        // quotas, IMAP's own keys.
        let e = try Configuration.parse(base.replacingOccurrences(of: "host = \"t\"", with: "host = \"u\""), path: path)
        #expect(e.childSettingsDiffer(from: a, child: "turn"))
        let g = try Configuration.parse(
            base.replacingOccurrences(of: "host = \"t\"", with: "host = \"t\"\nmax_allocations_per_user = 3"),
            path: path)
        #expect(g.childSettingsDiffer(from: a, child: "turn"))
        let h = try Configuration.parse(base + "[imap]\nquota_mb = 5\ncomment = \"hi\"\n", path: path)
        #expect(h.childSettingsDiffer(from: a, child: "imap"))
        #expect(!h.childSettingsDiffer(from: a, child: "turn") && !h.childSettingsDiffer(from: a, child: "iroh"))
        let d = try Configuration.parse(base + "[shadowsocks]\nlisten = \"127.0.0.1:9\"\n", path: path)
        #expect(d.childSettingsDiffer(from: a, child: "shadowsocks"))
    }

    @Test func irohLimitsHaveDefaultsAndCanBeSet() throws {
        let base = "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n"
        let defaults = try Configuration.parse(base, path: path).iroh
        #expect(defaults.tlsListen == nil && defaults.child.listen == [defaults.listen])
        #expect(defaults.limits.rate == 2 << 20 && defaults.limits.burst == 4 << 20)
        #expect(defaults.limits.maxFrameSize == 1 << 20 && defaults.limits.maxPacketSize == 1 << 16)
        #expect(defaults.limits.queueSize == 512 && defaults.limits.writeTimeout == 2)
        #expect(defaults.limits.handshakeTimeout == 10 && defaults.limits.maxConnections == 10_000)
        let set = try Configuration.parse(
            base + """
                tls_listen = "127.0.0.1:8443"
                rate_limit = 0
                rate_burst = 1000
                max_frame_size = 70000
                max_packet_size = 1500
                handshake_timeout = 2.5
                max_connections = 3
                queue_size = 16
                write_timeout = 0.5
                """, path: path)
        #expect(set.iroh.tlsListen == ListenAddress(host: "127.0.0.1", port: 8443))
        #expect(set.iroh.child.listen.count == 2)
        var expected = IrohLimits()
        (expected.rate, expected.burst, expected.maxFrameSize, expected.maxPacketSize) = (0, 1000, 70000, 1500)
        (expected.handshakeTimeout, expected.maxConnections, expected.queueSize, expected.writeTimeout) = (
            2.5, 3, 16, 0.5
        )
        #expect(set.iroh.limits == expected)
        #expect(set.childSettingsDiffer(from: try Configuration.parse(base, path: path), child: "iroh"))
    }

    @Test func frontUpstreams() throws {
        let base = "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n"
        let defaults = try Configuration.parse(base, path: path)
        #expect(defaults.imap.proxyTLSListen == nil && defaults.iroh.imapUpstream == nil)
        #expect(defaults.iroh.smtpUpstream == nil && defaults.iroh.upstreamProxyProtocol)
        // ALPN imap goes to IMAP's PROXY listener unless set otherwise.
        let proxied = try Configuration.parse(
            "[imap]\nproxy_tls_listen = \"127.0.0.1:10993\"\n" + base + "smtp_upstream = \"127.0.0.1:10465\"\n",
            path: path)
        #expect(proxied.iroh.imapUpstream == ListenAddress(host: "127.0.0.1", port: 10993))
        #expect(proxied.iroh.smtpUpstream == ListenAddress(host: "127.0.0.1", port: 10465))
        #expect(proxied.imap.child.listen.contains(ListenAddress(host: "127.0.0.1", port: 10993)))
        let set = try Configuration.parse(
            base + "imap_upstream = \"[::1]:993\"\nupstream_proxy_protocol = false\n", path: path)
        #expect(set.iroh.imapUpstream == ListenAddress(host: "::1", port: 993) && !set.iroh.upstreamProxyProtocol)
        // The PROXY listener trusts what it is told: loopback only.
        #expect(
            errors("[imap]\nproxy_tls_listen = \"0.0.0.0:10993\"\n" + base).contains {
                $0.contains("[imap] proxy_tls_listen: must be a loopback address")
            })
        #expect(errors(base + "smtp_upstream = \"nope\"\n").contains { $0.contains("[iroh] smtp_upstream") })
    }

    @Test func inviteLinkPostsToNewOnTheFront() throws {
        let base = "[imap]\nmail_domain = \"_chat.example.org\"\n[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n"
        #expect(try Configuration.parse(base, path: path).inviteLink == nil)
        // On 443 too: every Delta Chat core since 2.0 posts to a https URL; `dcaccount:<domain>` needs 2.23.
        let on443 = try Configuration.parse(base + "tls_listen = \"0.0.0.0:443\"\n", path: path)
        #expect(on443.inviteLink == "dcaccount:https://_chat.example.org/new")
        let elsewhere = try Configuration.parse(base + "tls_listen = \"127.0.0.1:8443\"\n", path: path)
        #expect(elsewhere.inviteLink == "dcaccount:https://_chat.example.org:8443/new")
        #expect(
            try Configuration.parse(base + "tls_listen = \"0.0.0.0:443\"\nenabled = false\n", path: path).inviteLink
                == nil)
    }

    @Test func controlSocketIsFoundDespiteErrorsElsewhere() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("s.conf").path
        try "[supervisor]\nruntime_dir = \"run\"\n[turn]\nbogus = 1\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationErrors.self) { try Configuration.load(path: file) }
        #expect(try Configuration.controlSocket(path: file) == directory.path + "/run/control.sock")
    }

    @Test(arguments: [
        ("127.0.0.1:3478", "127.0.0.1", 3478), ("[::1]:993", "::1", 993),
        ("chat.example.org:443", "chat.example.org", 443),
    ])
    func listenAddressesParse(text: String, host: String, port: UInt16) throws {
        let address = try #require(ListenAddress(parsing: text))
        #expect(address.host == host && address.port == port)
        #expect(address.description == text)
    }

    @Test(arguments: ["", ":1", "::1:993", "host:", "host:70000", "[::1]993", "a b:1", "[1.2.3.4]:5"])
    func badListenAddressesAreRejected(text: String) {
        #expect(ListenAddress(parsing: text) == nil)
    }
}

/// A seeded, bounded fuzz pass over the configuration parser: every mutation of the development
/// configuration either parses or is refused with errors that point inside the file.
@Suite struct ConfigurationFuzzTests {
    @Test func mutatedConfigurationsParseOrPointInsideTheFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOfFile: root.appendingPathComponent("supervisor.conf").path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var state: UInt64 = 7
        func random(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let fragments = ["=", "\"", "[", "]", "[turn]", "x = 1", "enabled = 3", "listen = \"::\"", "\u{0}", "#", "'''"]
        var refused = 0
        for _ in 0..<1500 {
            var mutated = lines
            for _ in 0...random(3) {
                let index = random(mutated.count)
                switch random(3) {
                case 0: mutated[index] += fragments[random(fragments.count)]
                case 1: mutated.remove(at: index)
                default: mutated.insert(fragments[random(fragments.count)], at: index)
                }
            }
            do {
                _ = try Configuration.parse(mutated.joined(separator: "\n"), path: "/x.conf")
            } catch {
                refused += 1
                for problem in error.errors {
                    #expect(problem.line.map { (1...mutated.count + 1).contains($0) } ?? true, "\(problem)")
                }
            }
        }
        #expect(refused > 100)
    }
}

@Suite struct ShadowsocksConfigurationTests {
    let path = "/etc/chatmail/supervisor.conf"
    let base = "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"https://chat.example.org:3341\"\n"

    @Test func defaultsReachTheBundlesTLSPortsOnly() throws {
        let configuration = try Configuration.parse(
            base + "[tls]\nnames = [\"chat.example.org\", \"localhost\"]\n[imap]\ntls_listen = \"0.0.0.0:1993\"\n",
            path: path)
        let ss = configuration.shadowsocks
        #expect(ss.method == "2022-blake3-aes-256-gcm")
        #expect(ss.key == nil)
        #expect(ss.names == ["chat.example.org"])
        #expect(ss.addresses.isEmpty)
        #expect(ss.upstreams.keys.sorted() == [443, 465, 993, 3341])
        #expect(ss.upstreams[993] == ListenAddress(host: "127.0.0.1", port: 1993))
        // An https:// relay URL without an HTTPS listener: a TLS proxy in front of the relay.
        #expect(ss.upstreams[3341] == ListenAddress(host: "127.0.0.1", port: 3341))
        #expect(ss.publicHost == "chat.example.org" && ss.publicPort == 8388)
        #expect(ss.handshakeTimeout == 60 && ss.idleTimeout == 1800 && ss.maxHalfOpen == 1024)
    }

    @Test func theIrohRelayPortGoesToTheListenerItsURLNames() throws {
        let https = try Configuration.parse(
            "[turn]\nhost = \"h\"\n[iroh]\nlisten = \"0.0.0.0:3340\"\ntls_listen = \"0.0.0.0:3341\"\n"
                + "url = \"https://chat.example.org:3341\"\n[shadowsocks]\nnames = [\"chat.example.org\"]\n",
            path: path)
        #expect(https.shadowsocks.upstreams[3341] == ListenAddress(host: "127.0.0.1", port: 3341))
        let http = try Configuration.parse(
            "[turn]\nhost = \"h\"\n[iroh]\nurl = \"http://chat.example.org:3340\"\n", path: path)
        #expect(http.shadowsocks.upstreams[3340] == ListenAddress(host: "127.0.0.1", port: 3340))
        #expect(http.shadowsocks.upstreams.keys.sorted() == [443, 465, 993, 3340])
    }

    @Test func explicitSettings() throws {
        let configuration = try Configuration.parse(
            base + """
                [shadowsocks]
                listen = "127.0.0.1:18388"
                method = "aes-256-gcm"
                key = "secret"
                names = ["mail.example.org"]
                addresses = ["203.0.113.5", "2001:db8::5"]
                allowed_ports = [993, 465]
                upstreams = ["465=[::1]:10465"]
                handshake_timeout = 2
                public_host = "proxy.example.org"
                public_port = 443
                """, path: path)
        let ss = configuration.shadowsocks
        #expect(ss.method == "aes-256-gcm" && ss.key == "secret")
        #expect(ss.addresses == ["203.0.113.5", "2001:db8::5"])
        #expect(
            ss.upstreams == [
                993: ListenAddress(host: "127.0.0.1", port: 993), 465: ListenAddress(host: "::1", port: 10465),
            ])
        #expect(ss.handshakeTimeout == 2 && ss.publicHost == "proxy.example.org" && ss.publicPort == 443)
    }

    @Test(arguments: [
        ("method = \"rc4-md5\"", "[shadowsocks] method"), ("key = \"\"", "[shadowsocks] key"),
        ("names = [\"localhost\"]", "[shadowsocks] names"),
        ("addresses = [\"chat.example.org\"]", "[shadowsocks] addresses"),
        ("allowed_ports = [0]", "[shadowsocks] allowed_ports"),
        ("upstreams = [\"25=127.0.0.1:25\"]", "[shadowsocks] upstreams"),
        ("upstreams = [\"993\"]", "[shadowsocks] upstreams"), ("max_half_open = 0", "[shadowsocks] max_half_open"),
        ("bogus = 1", "[shadowsocks] bogus"),
    ])
    func badSettingsAreErrors(line: String, key: String) {
        do {
            _ = try Configuration.parse(base + "[shadowsocks]\n" + line + "\n", path: path)
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.errors.contains { $0.description.contains(key) }, "\(error)")
        }
    }
}
