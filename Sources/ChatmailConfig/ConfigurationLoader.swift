import Foundation
import TOMLKit

/// Every problem found in one configuration file.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]

    public init(errors: [ConfigurationError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension Configuration {
    /// Reads and validates the file at `path`.
    public static func load(path: String) throws(ConfigurationErrors) -> Configuration {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let data = FileManager.default.contents(atPath: absolute), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigurationErrors(errors: [
                .init(
                    file: path, line: nil, key: nil, message: "cannot read the file (missing, unreadable or not UTF-8)")
            ])
        }
        return try parse(text, path: absolute)
    }

    /// The control socket the file at `path` names. Errors outside `[supervisor]` do not matter
    /// here, so that `chatmailctl reload` can reach the supervisor and report them.
    public static func controlSocket(path: String) throws(ConfigurationErrors) -> String {
        do {
            return try load(path: path).supervisor.controlSocket
        } catch {
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            guard let data = FileManager.default.contents(atPath: absolute),
                let text = String(data: data, encoding: .utf8),
                let root = try? TOMLTable(string: text)
            else { throw error }
            let reader = ConfigurationReader(root: root, locator: KeyLocator(text: text), file: absolute)
            let supervisor = reader.readSupervisor()
            guard reader.errors.isEmpty else { throw error }
            return supervisor.controlSocket
        }
    }

    /// Validates `text` as if it were the file at `path` (which anchors relative paths).
    public static func parse(_ text: String, path: String) throws(ConfigurationErrors) -> Configuration {
        if let line = malformedHeaderLine(text) {
            throw ConfigurationErrors(errors: [
                .init(file: path, line: line, key: nil, message: "TOML syntax: malformed table header")
            ])
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationErrors(errors: [
                .init(file: path, line: error.source.begin.line, key: nil, message: "TOML syntax: \(error.description)")
            ])
        } catch {
            throw ConfigurationErrors(errors: [.init(file: path, line: nil, key: nil, message: "TOML syntax: \(error)")]
            )
        }
        let reader = ConfigurationReader(root: root, locator: KeyLocator(text: text), file: path)
        let configuration = reader.read()
        if !reader.errors.isEmpty { throw ConfigurationErrors(errors: reader.errors) }
        return configuration
    }
}

/// The line of a table header whose name does not start with a key character, a quote or `]`.
/// The TOML library asserts (aborts) on those instead of reporting them, so they are caught first.
func malformedHeaderLine(_ text: String) -> Int? {
    for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.drop { $0 == " " || $0 == "\t" }
        guard line.first == "[" else { continue }
        let name = line.drop { $0 == "[" }.drop { $0 == " " || $0 == "\t" }
        guard let first = name.first else { return index + 1 }
        if !(first.isLetter || first.isNumber || "_-\"']".contains(first)) { return index + 1 }
    }
    return nil
}

/// Finds the line of a section header or key, which the TOML library does not report.
struct KeyLocator: Sendable {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var section = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix { $0 != "]" }).trimmingCharacters(in: .whitespaces)
                lines[section] = lines[section] ?? index + 1
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\"'"))
                lines["\(section).\(key)"] = lines["\(section).\(key)"] ?? index + 1
            }
        }
    }

    func line(section: String, key: String? = nil) -> Int? {
        key.map { lines["\(section).\($0)"] } ?? lines[section]
    }
}

/// Reads the sections one key at a time, collecting every error with its line.
final class ConfigurationReader {
    let root: TOMLTable
    let locator: KeyLocator
    let file: String
    let directory: String
    var errors: [ConfigurationError] = []

    init(root: TOMLTable, locator: KeyLocator, file: String) {
        self.root = root
        self.locator = locator
        self.file = file
        self.directory = (file as NSString).deletingLastPathComponent
    }

    func fail(_ section: String, _ key: String?, _ message: String) {
        errors.append(
            .init(
                file: file, line: locator.line(section: section, key: key) ?? locator.line(section: section),
                key: key.map { "[\(section)] \($0)" } ?? "[\(section)]", message: message))
    }

    func read() -> Configuration {
        let known = ["supervisor", "imap", "turn", "iroh", "shadowsocks", "tls"]
        for key in root.keys where !known.contains(key) {
            errors.append(
                .init(
                    file: file, line: locator.line(section: key), key: "[\(key)]",
                    message: "unknown section (known: \(known.joined(separator: ", ")))"))
        }
        let supervisor = readSupervisor()
        let imap = readIMAP(runtimeDir: supervisor.runtimeDir)
        let turn = readTURN()
        let iroh = readIroh(imap: imap)
        let tls = readTLS()
        let configuration = Configuration(
            path: file, supervisor: supervisor, imap: imap, turn: turn, iroh: iroh,
            shadowsocks: readShadowsocks(imap: imap, iroh: iroh, tls: tls), tls: tls, locator: locator)
        if turn.preferTLS, turn.child.enabled, !configuration.turnServesTLS {
            fail("turn", "prefer_tls", "needs TURN over TLS: a [tls] certificate (or self_signed)")
        }
        return configuration
    }

    func section(_ name: String) -> Section {
        let value = root[name]
        if let value, value.table == nil { fail(name, nil, "must be a table") }
        return Section(name: name, table: value?.table, reader: self)
    }

    /// Makes a configured path absolute against the configuration file's directory.
    func absolute(_ path: String) -> String {
        path.hasPrefix("/")
            ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    func readSupervisor() -> SupervisorSection {
        let s = section("supervisor")
        let stateDir = absolute(s.string("state_dir", default: "/var/lib/chatmail"))
        let runtimeDir = absolute(s.string("runtime_dir", default: "/run/chatmail"))
        var result = SupervisorSection(
            stateDir: stateDir, runtimeDir: runtimeDir,
            controlSocket: absolute(s.string("control_socket", default: runtimeDir + "/control.sock")),
            logLevel: s.choice("log_level", default: .info))
        result.restartDelayMin = s.seconds("restart_delay_min", default: result.restartDelayMin)
        result.restartDelayMax = s.seconds("restart_delay_max", default: result.restartDelayMax)
        if result.restartDelayMax < result.restartDelayMin {
            fail("supervisor", "restart_delay_max", "must not be below restart_delay_min")
        }
        result.stableAfter = s.seconds("stable_after", default: result.stableAfter)
        result.crashLoopWindow = s.seconds("crash_loop_window", default: result.crashLoopWindow)
        result.crashLoopLimit = s.int("crash_loop_limit", default: result.crashLoopLimit, range: 1...10_000)
        result.readyTimeout = s.seconds("ready_timeout", default: result.readyTimeout)
        let metricsListen = s.string("metrics_listen", default: "")
        if !metricsListen.isEmpty {
            result.metricsListen = ListenAddress(parsing: metricsListen)
            if result.metricsListen == nil {
                s.fail("metrics_listen", "expected \"host:port\" (IPv6 as \"[::1]:port\")")
            }
        }
        result.noLog = s.bool("no_log", default: result.noLog)
        s.finish()
        return result
    }

    private func readIMAP(runtimeDir: String) -> IMAPSection {
        let s = section("imap")
        let listen = s.address("listen", default: "0.0.0.0:143")
        let tlsListen = s.address("tls_listen", default: "0.0.0.0:993")
        let lmtp = absolute(s.string("lmtp_socket", default: runtimeDir + "/lmtp.sock"))
        let lmtpListenText = s.string("lmtp_listen", default: "")
        let lmtpListen = lmtpListenText.isEmpty ? nil : ListenAddress(parsing: lmtpListenText)
        if !lmtpListenText.isEmpty && lmtpListen == nil { s.fail("lmtp_listen", "expected \"host:port\"") }
        let child = s.child(stopTimeout: 20, listen: [listen, tlsListen])
        var result = IMAPSection(
            child: child, listen: listen, tlsListen: tlsListen, lmtpSocket: lmtp, lmtpListen: lmtpListen)
        let authSocket = s.string("auth_socket", default: "")
        result.authSocket = authSocket.isEmpty ? "" : absolute(authSocket)
        let freeText = s.string("min_free_space", default: "1G")
        if let bytes = IMAPSection.byteSize(freeText) {
            result.minFreeSpace = bytes
        } else {
            s.fail("min_free_space", "expected a size such as \"1G\", \"500M\" or \"0\"")
        }
        let database = s.string("database", default: "")
        result.database = database.isEmpty ? "" : absolute(database)
        result.mailDomain = s.string("mail_domain", default: result.mailDomain).lowercased()
        if result.mailDomain.isEmpty || result.mailDomain.contains(where: { $0.isWhitespace || $0 == "@" }) {
            s.fail("mail_domain", "must be a domain name")
        }
        result.autoCreateAccounts = s.bool("auto_create_accounts", default: result.autoCreateAccounts)
        result.localpartMinLength = s.int("localpart_min_length", default: result.localpartMinLength, range: 1...64)
        result.localpartMaxLength = s.int("localpart_max_length", default: result.localpartMaxLength, range: 1...64)
        if result.localpartMaxLength < result.localpartMinLength {
            s.fail("localpart_max_length", "must not be below localpart_min_length")
        }
        result.passwordMinLength = s.int("password_min_length", default: result.passwordMinLength, range: 1...1024)
        result.quotaMB = s.int("quota_mb", default: result.quotaMB, range: 1...1_000_000)
        result.maxMessageSize = s.int("max_message_size", default: result.maxMessageSize, range: 1024...1_073_741_824)
        result.maxMessageAgeDays = s.int("max_message_age_days", default: result.maxMessageAgeDays, range: 1...36500)
        result.maxInactiveDays = s.int("max_inactive_days", default: result.maxInactiveDays, range: 1...36500)
        result.startTLS = s.bool("starttls", default: result.startTLS)
        result.plaintextLogin = s.bool("plaintext_login", default: result.plaintextLogin)
        result.comment = s.string("comment", default: result.comment)
        result.admin = s.string("admin", default: result.admin)
        result.maxSMTPRecipients = s.int("max_smtp_recipients", default: result.maxSMTPRecipients, range: 0...1_000_000)
        result.maxLineLength = s.int("max_line_length", default: result.maxLineLength, range: 1024...1_048_576)
        result.maxLiteralSize = s.int("max_literal_size", default: result.maxLiteralSize, range: 1024...16_777_216)
        result.maxSessionsPerAccount = s.int(
            "max_sessions_per_account", default: result.maxSessionsPerAccount, range: 1...100_000)
        result.maxFailedLoginsPerMinute = s.int(
            "max_failed_logins_per_minute", default: result.maxFailedLoginsPerMinute, range: 1...100_000)
        result.maxAccountCreationsPerHour = s.int(
            "max_account_creations_per_hour", default: result.maxAccountCreationsPerHour, range: 0...1_000_000)
        result.passwordIterations = s.int(
            "password_iterations", default: result.passwordIterations, range: 1000...10_000_000)
        result.idleKeepalive = s.int("idle_keepalive", default: result.idleKeepalive, range: 5...290)
        result.handshakeTimeout = s.int("handshake_timeout", default: result.handshakeTimeout, range: 1...3600)
        result.loginTimeout = s.int("login_timeout", default: result.loginTimeout, range: 1...3600)
        result.sendTimeout = s.int("send_timeout", default: result.sendTimeout, range: 1...3600)
        result.push = s.bool("push", default: result.push)
        result.pushURL = s.string("push_url", default: result.pushURL)
        if !IMAPSection.pushURLAllowed(result.pushURL) {
            s.fail("push_url", "expected an https:// URL (http:// only to a loopback host)")
        }
        let caFile = s.string("push_ca_file", default: "")
        result.pushCAFile = caFile.isEmpty ? "" : absolute(caFile)
        result.pushRetryBase = s.int("push_retry_base", default: result.pushRetryBase, range: 1...3600)
        result.pushGiveUp = s.int("push_give_up", default: result.pushGiveUp, range: 0...604_800)
        result.pushConcurrency = s.int("push_concurrency", default: result.pushConcurrency, range: 1...64)
        result.pushTimeout = s.int("push_timeout", default: result.pushTimeout, range: 1...600)
        result.maxPushTokens = s.int("max_push_tokens", default: result.maxPushTokens, range: 1...1000)
        result.maxPushTokenSize = s.int("max_push_token_size", default: result.maxPushTokenSize, range: 64...8192)
        result.pushTokenDays = s.int("push_token_days", default: result.pushTokenDays, range: 1...36500)
        if s.optionalString("proxy_tls_listen") != nil {
            let address = s.address("proxy_tls_listen", default: "127.0.0.1:10993")
            if ListenAddress.isLoopback(address.host) {
                result.proxyTLSListen = address
                result.child.listen.append(address)
            } else {
                s.fail("proxy_tls_listen", "must be a loopback address: it trusts the PROXY header it is sent")
            }
        }
        s.finish()
        return result
    }

    private func readTURN() -> TURNSection {
        let s = section("turn")
        let listen = s.address("listen", default: "0.0.0.0:3478")
        let tlsListen = s.address("tls_listen", default: "0.0.0.0:5349")
        let child = s.child(stopTimeout: 5, listen: [listen, tlsListen])
        var host = s.string("host", default: listen.isWildcard || listen.isIPv6 ? "" : listen.host)
        if host.isEmpty {
            if child.enabled { s.fail("host", "required: the DNS name or IPv4 address clients reach TURN at") }
            host = "invalid"
        } else if host.contains(":") || host.contains(where: \.isWhitespace) {
            s.fail("host", "must be a DNS name or an IPv4 address (Delta Chat cannot use an IPv6 literal here)")
        }
        let port = UInt16(s.int("port", default: Int(listen.port), range: 1...65535))
        let realm = s.string("realm", default: host)
        let ttl = s.int("credential_ttl", default: 5 * 86400, range: 60...(365 * 86400))
        let relayText = s.string("relay_ports", default: "49152-65535")
        var relayPorts: ClosedRange<UInt16> = 49152...65535
        let bounds = relayText.split(separator: "-").compactMap { UInt16($0.trimmingCharacters(in: .whitespaces)) }
        if bounds.count == 2, bounds[0] >= 1024, bounds[0] <= bounds[1] {
            relayPorts = bounds[0]...bounds[1]
        } else {
            s.fail("relay_ports", "must be \"LOW-HIGH\" with 1024 <= LOW <= HIGH <= 65535")
        }
        var result = TURNSection(
            child: child, listen: listen, tlsListen: tlsListen, host: host, port: port, realm: realm,
            credentialTTL: ttl, relayPorts: relayPorts,
            relayAddresses: s.stringList("relay_addresses", default: [listen.host]))
        result.externalAddresses = s.stringList("external_addresses", default: [])
        for key in ["relay_addresses", "external_addresses"] {
            let list = key == "relay_addresses" ? result.relayAddresses : result.externalAddresses
            if list.count > 2 || list.filter({ $0.contains(":") }).count > 1
                || list.filter({ !$0.contains(":") }).count > 1
                || list.contains(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) || $0.contains("/") })
            {
                s.fail(key, "expected at most one IPv4 and one IPv6 address")
            }
        }
        result.allowedPeers = s.stringList("allowed_peers", default: [])
        result.deniedPeers = s.stringList("denied_peers", default: [])
        result.maxAllocationsPerUser = s.int("max_allocations_per_user", default: 10, range: 1...100_000)
        result.maxAllocationsPerAddress = s.int("max_allocations_per_address", default: 64, range: 1...1_000_000)
        result.maxAllocations = s.int("max_allocations", default: 50_000, range: 1...10_000_000)
        result.maxPermissions = s.int("max_permissions", default: 32, range: 1...1000)
        result.maxLifetime = s.int("max_lifetime", default: 3600, range: 600...86400)
        result.bandwidthLimit = s.int("bandwidth_limit", default: 20_000, range: 0...100_000_000)
        result.handshakeTimeout = s.int("handshake_timeout", default: 10, range: 1...300)
        result.unallocatedTimeout = s.int("unallocated_timeout", default: 60, range: 1...3600)
        result.software = s.string("software", default: "")
        result.secrets = s.stringOrList("secret")
        if result.secrets.contains(where: \.isEmpty) { s.fail("secret", "must not be empty") }
        result.threads = s.int("threads", default: 0, range: 0...1024)
        result.tlsPort = UInt16(s.int("tls_port", default: Int(tlsListen.port), range: 1...65535))
        result.preferTLS = s.bool("prefer_tls", default: false)
        s.finish()
        return result
    }

    private func readIroh(imap: IMAPSection) -> IrohSection {
        let s = section("iroh")
        let listen = s.address("listen", default: "0.0.0.0:3340")
        let tlsListen = s.optionalString("tls_listen").map { _ in s.address("tls_listen", default: "0.0.0.0:443") }
        let child = s.child(stopTimeout: 5, listen: [listen] + (tlsListen.map { [$0] } ?? []))
        let derived = listen.isWildcard ? "" : "http://\(listen)"
        let url = s.string("url", default: derived)
        if url.isEmpty {
            if child.enabled { s.fail("url", "required when listen is a wildcard address: the relay URL clients use") }
        } else if !(url.hasPrefix("http://") || url.hasPrefix("https://")) || url.contains(where: \.isWhitespace) {
            s.fail("url", "must be an http:// or https:// URL")
        }
        var limits = IrohLimits()
        limits.rate = s.int("rate_limit", default: limits.rate, range: 0...(1 << 40))
        limits.burst = s.int("rate_burst", default: limits.burst, range: 1...(1 << 40))
        limits.maxFrameSize = s.int("max_frame_size", default: limits.maxFrameSize, range: 1024...(1 << 20))
        limits.maxPacketSize = s.int("max_packet_size", default: limits.maxPacketSize, range: 1280...(1 << 16))
        limits.handshakeTimeout = s.seconds("handshake_timeout", default: limits.handshakeTimeout)
        limits.maxConnections = s.int("max_connections", default: limits.maxConnections, range: 1...10_000_000)
        limits.queueSize = s.int("queue_size", default: limits.queueSize, range: 1...65536)
        limits.writeTimeout = s.seconds("write_timeout", default: limits.writeTimeout)
        var result = IrohSection(child: child, listen: listen, tlsListen: tlsListen, url: url, limits: limits)
        let imapUpstream = s.optionalString("imap_upstream").map { _ in
            s.address("imap_upstream", default: "127.0.0.1:10993")
        }
        result.imapUpstream = imapUpstream ?? imap.proxyTLSListen
        result.smtpUpstream = s.optionalString("smtp_upstream").map { _ in
            s.address("smtp_upstream", default: "127.0.0.1:10465")
        }
        result.upstreamProxyProtocol = s.bool("upstream_proxy_protocol", default: result.upstreamProxyProtocol)
        result.newAccountsPerHour = s.int(
            "new_accounts_per_hour", default: result.newAccountsPerHour, range: 0...1_000_000)
        s.finish()
        return result
    }

    /// Defaults: the TLS ports of this bundle's services (IMAP 993, SMTP 465, HTTPS 443, and the iroh relay's
    /// port when it runs), each to the local address of its service; the names of the TLS certificate.
    private func readShadowsocks(imap: IMAPSection, iroh: IrohSection, tls: TLSSection) -> ShadowsocksSection {
        let s = section("shadowsocks")
        let listen = s.address("listen", default: "0.0.0.0:8388")
        let child = s.child(stopTimeout: 5, listen: [listen])
        let method = s.string("method", default: "2022-blake3-aes-256-gcm")
        if !ShadowsocksSection.methods.contains(method) {
            s.fail("method", "expected one of \(ShadowsocksSection.methods.joined(separator: ", "))")
        }
        let key = s.optionalString("key")
        if key?.isEmpty == true { s.fail("key", "must not be empty (leave it out to generate one)") }
        let names = s.stringList("names", default: tls.names.filter { $0 != "localhost" })
        if let bad = names.first(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) || $0 == "localhost" }) {
            s.fail("names", "\"\(bad)\" is not a usable name (never localhost)")
        }
        let addresses = s.stringList("addresses", default: listen.isWildcard ? [] : [listen.host])
        if let bad = addresses.first(where: { ListenAddress(parsing: "[\($0)]:1") == nil && !Self.isIPv4($0) }) {
            s.fail("addresses", "\"\(bad)\" is not an IP address")
        }
        func local(_ address: ListenAddress) -> ListenAddress {
            guard address.isWildcard else { return address }
            return ListenAddress(host: address.isIPv6 ? "::1" : "127.0.0.1", port: address.port)
        }
        var defaults: [UInt16: ListenAddress] = [
            993: local(imap.tlsListen), 465: ListenAddress(host: "127.0.0.1", port: 465),
            443: ListenAddress(host: "127.0.0.1", port: 443),
        ]
        // The relay's public port (from its URL) goes to its HTTPS listener for https:// URLs (or stays with
        // the TLS proxy in front of it), to its HTTP listener for http:// URLs.
        if iroh.child.enabled, let url = URLComponents(string: iroh.url) {
            let https = url.scheme == "https"
            let port = url.port.flatMap { UInt16(exactly: $0) } ?? (https ? 443 : 80)
            if https {
                if let tlsListen = iroh.tlsListen { defaults[port] = local(tlsListen) }
                if defaults[port] == nil { defaults[port] = ListenAddress(host: "127.0.0.1", port: port) }
            } else {
                defaults[port] = local(iroh.listen)
            }
        }
        var upstreams: [UInt16: ListenAddress] = [:]
        let ports = s.intList("allowed_ports", default: defaults.keys.sorted().map(Int.init), range: 1...65535)
        for port in ports.map({ UInt16($0) }) {
            upstreams[port] = defaults[port] ?? ListenAddress(host: "127.0.0.1", port: port)
        }
        for entry in s.stringList("upstreams", default: []) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let port = UInt16(parts[0]), let address = ListenAddress(parsing: parts[1]) else {
                s.fail("upstreams", "expected \"PORT=HOST:PORT\", found \"\(entry)\"")
                continue
            }
            guard upstreams[port] != nil else {
                s.fail("upstreams", "port \(port) is not in allowed_ports")
                continue
            }
            upstreams[port] = address
        }
        let publicHost = s.string("public_host", default: names.first ?? addresses.first ?? "")
        let publicPort = UInt16(s.int("public_port", default: Int(listen.port), range: 1...65535))
        let result = ShadowsocksSection(
            child: child, listen: listen, method: method, key: key, names: names, addresses: addresses,
            upstreams: upstreams, publicHost: publicHost, publicPort: publicPort,
            handshakeTimeout: s.seconds("handshake_timeout", default: 60),
            idleTimeout: s.seconds("idle_timeout", default: 1800),
            connectTimeout: s.seconds("connect_timeout", default: 10),
            maxHalfOpen: s.int("max_half_open", default: 1024, range: 1...1_000_000),
            maxHalfOpenPerSource: s.int("max_half_open_per_source", default: 32, range: 1...1_000_000),
            maxHalfOpenPerNetwork: s.int("max_half_open_per_network", default: 128, range: 1...1_000_000),
            maxConnections: s.int("max_connections", default: 8192, range: 1...1_000_000),
            replayHistory: s.int("replay_history", default: 100_000, range: 100...10_000_000))
        s.finish()
        return result
    }

    private static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && (Int($0).map { $0 <= 255 } ?? false) }
    }

    private func readTLS() -> TLSSection {
        let s = section("tls")
        let certificates = s.stringOrList("certificate").map(absolute)
        let keys = s.stringOrList("key").map(absolute)
        if certificates.count != keys.count {
            s.fail(certificates.count < keys.count ? "certificate" : "key", "certificate and key go together, pairwise")
        }
        let result = TLSSection(
            certificates: certificates, keys: keys, selfSigned: s.bool("self_signed", default: false),
            names: s.stringList("names", default: []))
        s.finish()
        return result
    }
}

extension IMAPSection {
    /// `"1G"`, `"500M"`, `"64K"`, `"2T"` (powers of 1024) or plain bytes.
    public static func byteSize(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(trimmed)
        var unit: Int64 = 1
        if let last = trimmed.last, let scale = units[last] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = Int64(digits), number >= 0,
            number <= Int64.max / unit
        else { return nil }
        return number * unit
    }
}
