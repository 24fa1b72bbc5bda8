import ChatmailCrypto

/// TURN REST credentials (the "shared secret" scheme coturn calls `use-auth-secret`):
/// username = expiry in Unix seconds (optionally `expiry:name`), password =
/// base64(HMAC-SHA1(secret, username)). The secret's UTF-8 bytes are the HMAC key.
public struct TURNCredential: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(secret: String, username: String) {
        self.username = username
        self.password = Crypto.base64(Crypto.hmacSHA1(key: Array(secret.utf8), message: Array(username.utf8)))
    }

    /// A credential that expires `ttl` seconds after `now` (Unix seconds).
    public init(secret: String, now: Int, ttl: Int) {
        self.init(secret: secret, username: String(now + ttl))
    }

    /// The credential of `account`. Delta Chat takes the username for the expiry, so it stays a bare timestamp;
    /// but the TURN server's per-user quota is keyed by it, and two accounts fetching in the same second would
    /// share one. So each account's expiry sits at an offset of its own within `period(ttl:)` seconds (a keyed
    /// hash of the account, which other accounts cannot predict): it lies in `(now + ttl - period, now + ttl]`,
    /// stays the same for one account for `period` seconds, and differs between two accounts unless their
    /// offsets collide (1 in `period`).
    public init(secret: String, account: String, now: Int, ttl: Int) {
        let period = Self.period(ttl: ttl)
        let digest = Crypto.hmacSHA256(key: Array(secret.utf8), message: Array("turn-expiry-offset:\(account)".utf8))
        let offset = Int(digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % UInt64(period))
        let latest = now + ttl
        let expiry = latest - ((latest - offset) % period + period) % period
        self.init(secret: secret, username: String(expiry))
    }

    /// How far below `now + ttl` an account's expiry may lie: a day, or half the lifetime when that is shorter.
    public static func period(ttl: Int) -> Int { max(1, min(86400, ttl / 2)) }

    /// The value of `/shared/vendor/deltachat/turn`: `host:port:username:password`.
    public func discoveryValue(host: String, port: UInt16) -> String {
        "\(host):\(port):\(username):\(password)"
    }

    /// The values of `/shared/vendor/deltachat/turn` and `/shared/vendor/deltachat/turns`, with this one credential
    /// on both: `turns` names `tlsPort` (nil when TURN has no TLS listener); `preferTLS` makes `turn` name it too.
    public func discoveryValues(host: String, port: UInt16, tlsPort: UInt16?, preferTLS: Bool) -> (
        turn: String, turns: String?
    ) {
        let plain = discoveryValue(host: host, port: port)
        let turns = tlsPort.map { discoveryValue(host: host, port: $0) }
        return (preferTLS ? turns ?? plain : plain, turns)
    }
}
