import COpenSSL

extension Crypto {
    /// Hash functions for HMAC and HKDF.
    public enum Digest: Sendable, Hashable, CaseIterable {
        case sha1
        case sha256

        /// Output length in bytes (20 for SHA-1, 32 for SHA-256).
        public var length: Int {
            switch self {
            case .sha1: 20
            case .sha256: 32
            }
        }

        /// The OpenSSL algorithm name.
        var name: String {
            switch self {
            case .sha1: "SHA1"
            case .sha256: "SHA256"
            }
        }

        var md: OpaquePointer? {
            switch self {
            case .sha1: LibCrypto.sha1
            case .sha256: LibCrypto.sha256
            }
        }
    }

    /// SHA-256 of `data` (32 bytes).
    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] {
        digest(LibCrypto.sha256, name: "SHA256", length: 32, data)
    }

    /// SHA-1 of `data` (20 bytes). Only for protocols that require it (TURN, Shadowsocks' HKDF).
    public static func sha1(_ data: some Collection<UInt8>) -> [UInt8] {
        digest(LibCrypto.sha1, name: "SHA1", length: 20, data)
    }

    /// MD5 of `data` (16 bytes). Only for protocols that require it (Shadowsocks' password-to-key step, TURN's
    /// long-term credential key). Traps if the MD5 provider is unavailable (e.g. a FIPS-only OpenSSL).
    public static func md5(_ data: some Collection<UInt8>) -> [UInt8] {
        digest(LibCrypto.md5, name: "MD5", length: 16, data)
    }

    /// HMAC of `message` under `key` with `digest` (RFC 2104); any key length, including empty.
    public static func hmac(_ digest: Digest, key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        let length = digest.length
        return withBytes(key) { key in
            withBytes(message) { message in
                [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                    var written = 0
                    let result = EVP_Q_mac(
                        nil, "HMAC", nil, digest.name, nil, key.baseAddress, key.count, message.bytePointer,
                        message.count, out.baseAddress, length, &written)
                    precondition(result != nil && written == length, "HMAC-\(digest.name) failed in libcrypto")
                    initialized = length
                }
            }
        }
    }

    /// HMAC-SHA256 of `message` under `key` (32 bytes).
    public static func hmacSHA256(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        hmac(.sha256, key: key, message: message)
    }

    /// HKDF (RFC 5869): extract with `salt` (empty means HashLen zero bytes), then expand `key` with `info` to
    /// `length` bytes. Shadowsocks AEAD session subkeys are `hkdf(.sha1, key: masterKey, salt: salt,
    /// info: "ss-subkey", length: keyLength)`.
    /// - Throws: `CryptoError.invalidOutputLength` unless `0 <= length <= 255 * digest.length`.
    public static func hkdf(
        _ digest: Digest, key: some Collection<UInt8>, salt: some Collection<UInt8>, info: some Collection<UInt8>,
        length: Int
    ) throws(CryptoError) -> [UInt8] {
        let maximum = 255 * digest.length
        guard length >= 0, length <= maximum else {
            throw .invalidOutputLength(requested: length, maximum: maximum)
        }
        guard length > 0 else { return [] }
        let output = withBytes(key) { key in
            withBytes(salt) { salt in
                withBytes(info) { info in
                    [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                        let ok = chatmail_hkdf(
                            LibCrypto.hkdf, digest.name, key.bytePointer, key.count, salt.bytePointer, salt.count,
                            info.bytePointer, info.count, out.baseAddress, length)
                        initialized = ok == 1 ? length : 0
                    }
                }
            }
        }
        guard output.count == length else { throw .openSSL("EVP_KDF_derive(HKDF-\(digest.name))") }
        return output
    }

    /// HKDF with a text `info`, e.g. `"ss-subkey"`.
    public static func hkdf(
        _ digest: Digest, key: some Collection<UInt8>, salt: some Collection<UInt8>, info: String, length: Int
    ) throws(CryptoError) -> [UInt8] {
        try hkdf(digest, key: key, salt: salt, info: Array(info.utf8), length: length)
    }

    /// The Shadowsocks password-to-master-key step (OpenSSL's `EVP_BytesToKey` with MD5, no salt, one round):
    /// D1 = MD5(password), Di = MD5(D(i-1) || password); the key is the first `keyLength` bytes of D1 || D2 || ….
    /// Returns `[]` if `keyLength <= 0`.
    public static func shadowsocksKey(password: some Collection<UInt8>, keyLength: Int) -> [UInt8] {
        guard keyLength > 0 else { return [] }
        let password = Array(password)
        var key: [UInt8] = []
        key.reserveCapacity(keyLength + 16)
        var block: [UInt8] = []
        while key.count < keyLength {
            block = md5(block + password)
            key += block
        }
        return Array(key.prefix(keyLength))
    }

    /// `shadowsocksKey(password:keyLength:)` on the password's UTF-8 bytes.
    public static func shadowsocksKey(password: String, keyLength: Int) -> [UInt8] {
        shadowsocksKey(password: Array(password.utf8), keyLength: keyLength)
    }

    private static func digest(_ md: OpaquePointer?, name: String, length: Int, _ data: some Collection<UInt8>)
        -> [UInt8]
    {
        guard let md else { preconditionFailure("libcrypto has no \(name): \(CryptoError.openSSL("EVP_MD_fetch"))") }
        return withBytes(data) { data in
            [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                var written: UInt32 = 0
                let ok = EVP_Digest(data.baseAddress, data.count, out.baseAddress, &written, md, nil)
                precondition(ok == 1 && Int(written) == length, "\(name) failed in libcrypto")
                initialized = length
            }
        }
    }
}
