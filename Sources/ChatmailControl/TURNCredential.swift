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

    /// The value of `/shared/vendor/deltachat/turn`: `host:port:username:password`.
    public func discoveryValue(host: String, port: UInt16) -> String {
        "\(host):\(port):\(username):\(password)"
    }
}
