import ChatmailCrypto

/// HMAC keys for STUN's credential mechanisms (RFC 8489 §9).
///
/// **No SASLprep / OpaqueString.** RFC 8489 §9.2.2 asks that username, realm and password go through the
/// OpaqueString profile (RFC 8265; RFC 5389 used SASLprep) before hashing. TURNCore hashes the UTF-8 bytes as
/// given, as coturn does: the chatmail usernames are decimal timestamps and the passwords base64 (ASCII), for
/// which the profile changes nothing. A client that sends a non-ASCII password unnormalised would compute a
/// different key: RFC 5769 §2.4's password "The\u{AD}M\u{AA}tr\u{2168}" must be given prepared ("TheMatrIX").
/// The REST credential scheme (password = base64(HMAC-SHA1(secret, username))) lives in
/// `ChatmailControl.TURNCredential`; its password goes into `longTermKey` like any other.
public enum STUNCredentials {
    /// The long-term key (RFC 8489 §9.2.2): MD5(username ":" realm ":" password) for `.md5` (16 bytes),
    /// SHA-256 of the same for `.sha256` (32 bytes); nil for any other algorithm. Both MESSAGE-INTEGRITY and
    /// MESSAGE-INTEGRITY-SHA256 use this key; which hash makes it is PASSWORD-ALGORITHM's choice.
    public static func longTermKey(
        username: some Collection<UInt8>, realm: some Collection<UInt8>, password: some Collection<UInt8>,
        algorithm: STUNPasswordAlgorithm = .md5
    ) -> [UInt8]? {
        var input: [UInt8] = []
        input.reserveCapacity(username.count + realm.count + password.count + 2)
        input.append(contentsOf: username)
        input.append(0x3A)
        input.append(contentsOf: realm)
        input.append(0x3A)
        input.append(contentsOf: password)
        switch algorithm.number {
        case STUNPasswordAlgorithm.md5.number: return Crypto.md5(input)
        case STUNPasswordAlgorithm.sha256.number: return Crypto.sha256(input)
        default: return nil
        }
    }

    /// The MD5 long-term key of the UTF-8 bytes of `username`, `realm` and `password` (no SASLprep, see above).
    public static func longTermKey(username: String, realm: String, password: String) -> [UInt8] {
        longTermKey(username: username.utf8, realm: realm.utf8, password: password.utf8)!
    }

    /// The long-term key of the UTF-8 bytes for `algorithm`; nil for an algorithm other than MD5 and SHA-256.
    public static func longTermKey(
        username: String, realm: String, password: String, algorithm: STUNPasswordAlgorithm
    ) -> [UInt8]? {
        longTermKey(username: username.utf8, realm: realm.utf8, password: password.utf8, algorithm: algorithm)
    }

    /// The short-term key (RFC 8489 §9.1.2): the password itself (its UTF-8 bytes).
    public static func shortTermKey(password: String) -> [UInt8] {
        Array(password.utf8)
    }

    /// The USERHASH value (RFC 8489 §14.4): SHA-256(username ":" realm).
    public static func userhash(username: some Collection<UInt8>, realm: some Collection<UInt8>) -> [UInt8] {
        var input = Array(username)
        input.append(0x3A)
        input.append(contentsOf: realm)
        return Crypto.sha256(input)
    }

    /// The USERHASH value of the UTF-8 bytes of `username` and `realm`.
    public static func userhash(username: String, realm: String) -> [UInt8] {
        userhash(username: username.utf8, realm: realm.utf8)
    }
}
