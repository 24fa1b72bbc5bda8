import ChatmailCrypto
import Foundation

/// A Shadowsocks TCP cipher method: the 2017 AEAD methods (SIP004) and the 2022 edition (SIP022) that Delta Chat's
/// client supports.
public enum ShadowsocksMethod: String, Sendable, Hashable, CaseIterable {
    case aes128GCM = "aes-128-gcm"
    case aes256GCM = "aes-256-gcm"
    case chacha20Poly1305 = "chacha20-ietf-poly1305"
    case blake3AES128GCM = "2022-blake3-aes-128-gcm"
    case blake3AES256GCM = "2022-blake3-aes-256-gcm"
    case blake3ChaCha20Poly1305 = "2022-blake3-chacha20-poly1305"

    /// Whether this is a SIP022 (2022 edition) method.
    public var is2022: Bool {
        switch self {
        case .aes128GCM, .aes256GCM, .chacha20Poly1305: false
        case .blake3AES128GCM, .blake3AES256GCM, .blake3ChaCha20Poly1305: true
        }
    }

    /// The AEAD that seals the chunks.
    public var algorithm: AEAD.Algorithm {
        switch self {
        case .aes128GCM, .blake3AES128GCM: .aes128GCM
        case .aes256GCM, .blake3AES256GCM: .aes256GCM
        case .chacha20Poly1305, .blake3ChaCha20Poly1305: .chacha20Poly1305
        }
    }

    /// Key length in bytes; salts have the same length.
    public var keyLength: Int { algorithm.keyLength }

    /// The length of a connection's salt.
    public var saltLength: Int { keyLength }

    /// The tag length of every chunk.
    public var tagLength: Int { 16 }

    /// The largest payload of one chunk: 0x3FFF (SIP004) or 0xFFFF (SIP022).
    public var maximumPayload: Int { is2022 ? 0xFFFF : 0x3FFF }

    /// The session subkey for one direction of a connection: HKDF-SHA1 "ss-subkey" (SIP004) or BLAKE3
    /// derive_key("shadowsocks 2022 session subkey", key ‖ salt) (SIP022).
    public func sessionSubkey(key: [UInt8], salt: some Collection<UInt8>) throws -> [UInt8] {
        if is2022 {
            return BLAKE3.deriveKey(context: "shadowsocks 2022 session subkey", material: key + salt, length: keyLength)
        }
        return try Crypto.hkdf(.sha1, key: key, salt: salt, info: "ss-subkey", length: keyLength)
    }

    /// The master key from its text form: the password through EVP_BytesToKey (SIP004), or the standard base64
    /// PSK of exactly `keyLength` bytes (SIP022; padding optional). Nil when a 2022 key is malformed.
    public func masterKey(from text: String) -> [UInt8]? {
        guard is2022 else { return Crypto.shadowsocksKey(password: text, keyLength: keyLength) }
        var padded = text
        while padded.count % 4 != 0 { padded += "=" }
        guard let data = Data(base64Encoded: padded), data.count == keyLength else { return nil }
        return Array(data)
    }

    /// A fresh random key in its text form: base64url of 32 random bytes as the password (SIP004; so the weak
    /// MD5 step does not matter), or the standard base64 PSK (SIP022).
    public func generateKeyText() -> String {
        is2022 ? Crypto.base64(Crypto.randomBytes(keyLength)) : Crypto.base64URL(Crypto.randomBytes(32))
    }

    /// The key of the state database's setting that keeps this method's generated key (each method has its own
    /// key length). chatmail-supervisor makes it; the shadowsocks child and chatmailctl only read it.
    public var stateKey: String { "shadowsocks.key.\(rawValue)" }
}

/// A method with its master key, what both ends share.
public struct ShadowsocksCredential: Sendable {
    public let method: ShadowsocksMethod
    /// The key as configured: the password (SIP004) or the base64 PSK (SIP022). It goes into the URL.
    public let keyText: String
    /// The master key the subkeys are derived from.
    public let masterKey: [UInt8]

    /// Nil when `keyText` is not a valid key for `method` (2022 keys must be base64 of the exact key length).
    public init?(method: ShadowsocksMethod, keyText: String) {
        guard !keyText.isEmpty, let masterKey = method.masterKey(from: keyText) else { return nil }
        self.method = method
        self.keyText = keyText
        self.masterKey = masterKey
    }
}
