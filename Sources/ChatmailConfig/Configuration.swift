/// The whole `supervisor.conf`: one section for the supervisor, one per child, and `[tls]`.
///
/// Relative paths are resolved against the directory of the configuration file.
public struct Configuration: Sendable, Equatable {
    /// The absolute path of the file this was read from.
    public var path: String
    public var supervisor: SupervisorSection
    public var imap: IMAPSection
    public var turn: TURNSection
    public var iroh: IrohSection
    public var shadowsocks: ShadowsocksSection
    public var tls: TLSSection
    /// The line of each section and key in the file, for errors found after loading (`error(_:_:_:)`).
    var locator = KeyLocator(text: "")

    /// The settings every child shares, by child name, in start order (sidecars first, IMAP last).
    public var children: [(name: String, settings: ChildSettings)] {
        [("turn", turn.child), ("iroh", iroh.child), ("shadowsocks", shadowsocks.child), ("imap", imap.child)]
    }

    /// The names of the enabled children, in start order. `overrides` (the running supervisor's state,
    /// or the toggles it saved) wins over the file's `enabled` for each child it names.
    public func enabledChildren(overrides: [String: Bool] = [:]) -> [String] {
        children.filter { overrides[$0.name] ?? $0.settings.enabled }.map(\.name)
    }

    /// An error about `key` of `[section]` (or the section itself when nil), at its line in this file: for the
    /// checks the children's settings types make after loading, so that they read like the loader's own.
    public func error(_ section: String, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(
            file: path, line: key.flatMap { locator.line(section: section, key: $0) } ?? locator.line(section: section),
            key: key.map { "[\(section)] \($0)" } ?? "[\(section)]", message: message)
    }

    public static func == (lhs: Configuration, rhs: Configuration) -> Bool {
        lhs.path == rhs.path && lhs.supervisor == rhs.supervisor && lhs.imap == rhs.imap && lhs.turn == rhs.turn
            && lhs.iroh == rhs.iroh && lhs.shadowsocks == rhs.shadowsocks && lhs.tls == rhs.tls
    }
}

public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

public struct SupervisorSection: Sendable, Equatable {
    public var stateDir: String
    public var runtimeDir: String
    public var controlSocket: String
    public var logLevel: LogLevel
    /// The first restart delay after a failure, in seconds; it doubles up to `restartDelayMax`.
    public var restartDelayMin: Double = 1
    public var restartDelayMax: Double = 60
    /// A child ready this long has its failure count reset.
    public var stableAfter: Double = 30
    /// `crashLoopLimit` failures within `crashLoopWindow` seconds mark a child crash-looping in status.
    public var crashLoopWindow: Double = 300
    public var crashLoopLimit: Int = 10
    /// A child that does not report ready within this many seconds is stopped and retried.
    public var readyTimeout: Double = 30
    /// Where `/metrics` (Prometheus text) is served; nil (the default): not served.
    public var metricsListen: ListenAddress? = nil
    /// No-log mode: children log no client address, account, TURN username, token or target.
    public var noLog = false
}

/// What every child section has: whether it runs, what runs, and how long it may take to stop.
public struct ChildSettings: Sendable, Equatable {
    public var enabled: Bool
    /// The program and its arguments; nil means `chatmail-<name>` beside the supervisor binary.
    public var command: [String]?
    /// Seconds between SIGTERM and SIGKILL.
    public var stopTimeout: Double
    /// The addresses this child listens on, as shown in status.
    public var listen: [ListenAddress]
    /// Open connections one source (an IPv4 address, an IPv6 /64) may hold on all this child's
    /// TCP listeners together; 0: no cap.
    public var maxConnectionsPerSource: Int

    public static let defaultMaxConnectionsPerSource = 256
}

public struct IMAPSection: Sendable, Equatable {
    public var child: ChildSettings
    public var listen: ListenAddress
    public var tlsListen: ListenAddress
    public var lmtpSocket: String
    /// Optional loopback TCP address for LMTP besides the socket.
    public var lmtpListen: ListenAddress?
    /// The Dovecot auth socket the MTA checks SMTP logins on (SASL); empty means none.
    public var authSocket: String = ""
    /// No new accounts while the disk under the mail store has less free space (bytes).
    public var minFreeSpace: Int64 = 1 << 30
    /// The mail store database; empty means `imap.sqlite` in state_dir.
    public var database: String = ""
    /// Addresses are `localpart@mailDomain`; LMTP refuses other domains.
    public var mailDomain: String = "localhost"
    /// Create an account on the first login whose localpart and password meet the rules below.
    public var autoCreateAccounts: Bool = true
    public var localpartMinLength: Int = 9
    public var localpartMaxLength: Int = 9
    public var passwordMinLength: Int = 9
    public var quotaMB: Int = 100
    /// LMTP refuses larger messages (bytes).
    public var maxMessageSize: Int = 31_457_280
    /// The sweep removes messages older than this and accounts not logged into for longer.
    public var maxMessageAgeDays: Int = 20
    public var maxInactiveDays: Int = 90
    /// Offer STARTTLS on the plain port.
    public var startTLS: Bool = true
    /// Allow LOGIN on the plain port before STARTTLS (tests, trusted networks).
    public var plaintextLogin: Bool = false
    /// METADATA `/shared/comment` and `/shared/admin`; empty means not served.
    public var comment: String = ""
    public var admin: String = ""
    /// METADATA `/shared/vendor/deltachat/maxsmtprecipients`; 0 means not served.
    public var maxSMTPRecipients: Int = 1000
    public var maxLineLength: Int = 8192
    public var maxLiteralSize: Int = 65536
    public var maxSessionsPerAccount: Int = 50
    /// Failed logins per source address per minute before that address is refused for a while.
    public var maxFailedLoginsPerMinute: Int = 20
    /// Accounts created by first login per source address (an IPv6 /64) per hour; 0: no limit.
    public var maxAccountCreationsPerHour: Int = 30
    /// PBKDF2-SHA256 iterations for new password hashes.
    public var passwordIterations: Int = 20000
    /// Seconds between `* OK Still here` lines to idling clients (Delta Chat waits 5 minutes).
    public var idleKeepalive: Int = 120
    /// Seconds a connection has to complete its TLS handshake (TLS port, STARTTLS).
    public var handshakeTimeout: Int = 30
    /// Seconds a connection has to log in.
    public var loginTimeout: Int = 60
    /// Seconds a client may leave our output unread (the send buffer full) before it is dropped.
    public var sendTimeout: Int = 120
    /// Post Delta Chat's device tokens to the notification proxy when mail arrives (XDELTAPUSH).
    public var push: Bool = true
    /// Where tokens are posted: https, or http to a loopback host only.
    public var pushURL: String = "https://notifications.delta.chat/notify"
    /// PEM CA certificates the proxy's certificate is checked against; empty: the system's.
    public var pushCAFile: String = ""
    /// A failed post is tried again after push_retry_base^n seconds, until push_give_up seconds
    /// after the mail came.
    public var pushRetryBase: Int = 8
    public var pushGiveUp: Int = 5 * 3600
    /// Posts under way at once, and the seconds one may take.
    public var pushConcurrency: Int = 8
    public var pushTimeout: Int = 30
    /// Device tokens per account, their size in bytes, and the days one is kept unless sent again.
    public var maxPushTokens: Int = 16
    public var maxPushTokenSize: Int = 4096
    public var pushTokenDays: Int = 90

    /// Whether `url` may be a push URL: https, or http to a loopback host.
    public static func pushURLAllowed(_ url: String) -> Bool {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            rest = lower.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            rest = lower.dropFirst(7)
        } else {
            return false
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { return false }
        var host: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return false }
            host = authority[authority.index(after: authority.startIndex)..<close]
        } else {
            host = authority.prefix { $0 != ":" }
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace }) else { return false }
        if lower.hasPrefix("https://") { return true }
        if host.hasSuffix(".") { host = host.dropLast() }
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
    /// IMAP over TLS after a PROXY protocol v2 header, which it trusts for the client's address: where the
    /// HTTPS front (`[iroh]`) passes ALPN `imap` connections. Loopback only; nil: none.
    public var proxyTLSListen: ListenAddress?
}

public struct TURNSection: Sendable, Equatable {
    public var child: ChildSettings
    public var listen: ListenAddress
    public var tlsListen: ListenAddress
    /// The DNS name or IPv4 address handed to clients in discovery.
    public var host: String
    /// The port handed to clients in discovery.
    public var port: UInt16
    public var realm: String
    /// Seconds a minted credential stays valid.
    public var credentialTTL: Int
    public var relayPorts: ClosedRange<UInt16>
    /// IP literals relayed sockets bind to, at most one per family. Default: listen's host.
    public var relayAddresses: [String]
    /// IP literals advertised as relayed addresses instead of the bound ones (a host behind a 1:1 NAT), at most
    /// one per family. Default: none.
    public var externalAddresses: [String] = []
    /// Peer ranges (`"10.1.0.0/16"`, `"2001:db8::/32"`, or single addresses) allowed although the defaults deny
    /// them (loopback, private, link-local, CGNAT, multicast, …).
    public var allowedPeers: [String] = []
    /// Peer ranges denied in addition to the defaults.
    public var deniedPeers: [String] = []
    /// Allocations per credential (username), per client IP address, and in total.
    public var maxAllocationsPerUser = 10
    public var maxAllocationsPerAddress = 64
    public var maxAllocations = 50_000
    /// Permissions (peer addresses) and channels per allocation.
    public var maxPermissions = 32
    /// The longest allocation lifetime granted, in seconds.
    public var maxLifetime = 3600
    /// Relayed kilobits per second per allocation and direction; 0 for no cap.
    public var bandwidthLimit = 20_000
    /// Seconds a TCP or TLS connection has for the TLS handshake and its first message.
    public var handshakeTimeout = 10
    /// Seconds a TCP or TLS connection may go on without an allocation, and a client may leave its
    /// connection unwritable (reading nothing) before it is closed.
    public var unallocatedTimeout = 60
    /// The SOFTWARE attribute in responses; empty (the default) sends none.
    public var software = ""
    /// Shared secrets for running without the supervisor (`chatmail-turn --config FILE`), current first.
    /// Under the supervisor the secrets come from its state database instead.
    public var secrets: [String] = []
    /// Event loops; 0 (the default) means one per CPU core.
    public var threads = 0
    /// The TURN-over-TLS port handed to clients in `/shared/vendor/deltachat/turns`. Default: tls_listen's port.
    public var tlsPort: UInt16 = 5349
    /// Hand out the TLS port as `/shared/vendor/deltachat/turn` too (networks where only TCP passes).
    public var preferTLS = false
}

public struct IrohSection: Sendable, Equatable {
    public var child: ChildSettings
    /// Plain HTTP (behind a TLS proxy, or for `http://` relay URLs).
    public var listen: ListenAddress
    /// HTTPS with the [tls] certificate, when set.
    public var tlsListen: ListenAddress?
    /// The relay URL handed to clients in discovery.
    public var url: String
    public var limits: IrohLimits = IrohLimits()
    /// The HTTPS listener is the relay's front: ALPN `imap` goes here (default: `[imap] proxy_tls_listen`),
    /// ALPN `smtp` there (the MTA's SMTPS service); nil: such connections are closed.
    public var imapUpstream: ListenAddress?
    public var smtpUpstream: ListenAddress?
    /// Send the upstreams a PROXY protocol v2 header with the client's address.
    public var upstreamProxyProtocol: Bool = true
    /// `POST /new` answers with credentials per source address (an IPv6 /64) per hour; 0: no limit.
    public var newAccountsPerHour: Int = 30
}

extension Configuration {
    /// The `dcaccount:` link that invites people to this relay, when the HTTPS front runs:
    /// `dcaccount:https://<domain>/new` (`<domain>:<port>` off 443): Delta Chat posts there and logs in with the
    /// answer, which creates the account. Not the shorter `dcaccount:<domain>` (the app makes up the credentials
    /// itself): Delta Chat before 2.23 refuses it, and it bypasses `/new`'s rules and limit.
    public var inviteLink: String? {
        guard iroh.child.enabled, let front = iroh.tlsListen else { return nil }
        let host = front.port == 443 ? imap.mailDomain : "\(imap.mailDomain):\(front.port)"
        return "dcaccount:https://\(host)/new"
    }
}

/// The iroh relay's per-connection bounds. The defaults follow iroh-relay's constants (notes §8, §9), plus a
/// byte-rate limit that iroh leaves to the operator.
public struct IrohLimits: Sendable, Equatable {
    /// Bytes per second a client may send (a token bucket on bytes read); 0 turns the limit off.
    public var rate: Int = 2 << 20
    /// The bucket's size in bytes: what a client may send at once after being idle.
    public var burst: Int = 4 << 20
    /// The largest frame or WebSocket message in bytes.
    public var maxFrameSize: Int = 1 << 20
    /// The largest relayed packet in bytes (family L packet; family W frame body).
    public var maxPacketSize: Int = 1 << 16
    /// Seconds from accepting a connection to the end of the relay handshake.
    public var handshakeTimeout: Double = 10
    /// Concurrent TCP connections; more are closed at once.
    public var maxConnections: Int = 10_000
    /// Packets queued towards one client; more are dropped.
    public var queueSize: Int = 512
    /// Seconds a client may leave written data unread before it is dropped.
    public var writeTimeout: Double = 2

    public init() {}
}

public struct ShadowsocksSection: Sendable, Equatable {
    /// The methods the server speaks (SIP004 and SIP022, as Delta Chat's client does).
    public static let methods = [
        "aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm",
        "2022-blake3-chacha20-poly1305",
    ]

    public var child: ChildSettings
    public var listen: ListenAddress
    /// One of `methods`.
    public var method: String
    /// The password (SIP004) or base64 PSK (SIP022); nil means generated at first start and kept in the state
    /// database.
    public var key: String?
    /// This server's DNS names that clients may name as the target (never `localhost`).
    public var names: [String]
    /// This server's IP addresses that clients may name as the target.
    public var addresses: [String]
    /// Target ports clients may reach, each mapped to the local address of its service.
    public var upstreams: [UInt16: ListenAddress]
    /// The host and port put into the `ss://` link.
    public var publicHost: String
    public var publicPort: UInt16
    /// Seconds a connection has to send a valid request; a failed one is read silently until then.
    public var handshakeTimeout: Double
    /// Seconds without traffic either way before a proxied connection is closed.
    public var idleTimeout: Double
    /// Seconds to connect to an upstream.
    public var connectTimeout: Double
    /// Connections that have not completed a handshake (including failed ones being drained), at most.
    public var maxHalfOpen: Int
    /// Half-open connections from one source address, at most.
    public var maxHalfOpenPerSource: Int
    /// Half-open connections from one /24 (IPv4) or /64 (IPv6), at most.
    public var maxHalfOpenPerNetwork: Int
    /// Connections in all, at most.
    public var maxConnections: Int
    /// Salts remembered per generation (two generations) against replays.
    public var replayHistory: Int
}

public struct TLSSection: Sendable, Equatable {
    /// PEM certificate chains and their keys, pairwise; the first pair is the default and the
    /// others are chosen by SNI (by the names in each certificate). Empty when not configured.
    public var certificates: [String]
    public var keys: [String]
    /// Generate a self-signed certificate in state_dir when none is configured (development).
    public var selfSigned: Bool
    /// The names the certificate is for.
    public var names: [String]
}

extension Configuration {
    /// Whether chatmail-turn listens on `[turn] tls_listen`: only with a `[tls]` certificate (or a development one).
    public var turnServesTLS: Bool { !tls.certificates.isEmpty || tls.selfSigned }

    /// The names of the children, in start order.
    public static let childNames = ["turn", "iroh", "shadowsocks", "imap"]

    /// The settings of child `name`.
    public func child(_ name: String) -> ChildSettings? {
        children.first { $0.name == name }?.settings
    }

    /// Whether child `name`'s section (or `no_log`) differs from `other`'s in anything the child reads, so that it
    /// needs a restart (children read their section once, at start). `enabled` is applied on its own;
    /// values only the supervisor hands out (the TURN port in discovery, the iroh URL) need no
    /// restart; certificates are re-read on the reload message.
    public func childSettingsDiffer(from other: Configuration, child name: String) -> Bool {
        // Every child reads no_log once, at start.
        if supervisor.noLog != other.supervisor.noLog { return true }
        switch name {
        case "imap":
            var (mine, theirs) = (imap, other.imap)
            (mine.child.enabled, theirs.child.enabled) = (true, true)
            return mine != theirs
        case "turn":
            var (mine, theirs) = (turn, other.turn)
            (mine.child.enabled, theirs.child.enabled) = (true, true)
            (mine.port, theirs.port) = (0, 0)
            (mine.tlsPort, theirs.tlsPort) = (0, 0)
            (mine.preferTLS, theirs.preferTLS) = (false, false)
            return mine != theirs
        case "iroh":
            var (mine, theirs) = (iroh, other.iroh)
            (mine.child.enabled, theirs.child.enabled) = (true, true)
            (mine.url, theirs.url) = ("", "")
            return mine != theirs
        case "shadowsocks":
            var (mine, theirs) = (shadowsocks, other.shadowsocks)
            (mine.child.enabled, theirs.child.enabled) = (true, true)
            return mine != theirs
        default:
            return true
        }
    }
}
