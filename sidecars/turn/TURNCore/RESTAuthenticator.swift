import ChatmailCrypto

/// The TURN REST credential scheme (coturn's `use-auth-secret`): the username is an expiry in Unix seconds,
/// optionally followed by `:name`; the password is base64(HMAC-SHA1(secret, username)). The server derives the
/// password itself, so any of its secrets (current and previous, for rotation) may have minted it.
public struct RESTAuthenticator: Sendable {
    public enum Failure: Error, Hashable, Sendable {
        /// The username is not `expiry` or `expiry:name` with a decimal expiry.
        case malformedUsername
        /// The expiry has passed.
        case expired
        /// The expiry lies further in the future than `maximumValidity` allows (a leaked secret's credentials
        /// then stop working sooner).
        case tooFarInFuture
        /// No secret is configured.
        case noSecret
    }

    /// Current secret first; the previous one keeps credentials minted before a rotation valid.
    public var secrets: [String]
    public var realm: String
    /// The longest validity accepted, in seconds from now; nil for no bound.
    public var maximumValidity: Int64?

    public init(secrets: [String], realm: String, maximumValidity: Int64? = nil) {
        self.secrets = secrets
        self.realm = realm
        self.maximumValidity = maximumValidity
    }

    /// The expiry that `username` carries.
    public static func expiry(of username: String) -> Int64? {
        let digits = username.utf8.prefix { $0 != 0x3A }
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self))
    }

    /// The password a secret gives `username`.
    public static func password(secret: String, username: String) -> String {
        Crypto.base64(Crypto.hmacSHA1(key: Array(secret.utf8), message: Array(username.utf8)))
    }

    /// The long-term keys (MD5(username:realm:password)) under each secret, in secret order, for checking
    /// MESSAGE-INTEGRITY; or why the username is refused before any HMAC is checked.
    public func keys(for username: String, now: Int64) -> Result<[[UInt8]], Failure> {
        guard !secrets.isEmpty else { return .failure(.noSecret) }
        guard let expiry = RESTAuthenticator.expiry(of: username) else { return .failure(.malformedUsername) }
        guard expiry > now else { return .failure(.expired) }
        if let maximumValidity, expiry - now > maximumValidity { return .failure(.tooFarInFuture) }
        return .success(
            secrets.map { secret in
                STUNCredentials.longTermKey(
                    username: username, realm: realm,
                    password: RESTAuthenticator.password(secret: secret, username: username))
            })
    }
}
