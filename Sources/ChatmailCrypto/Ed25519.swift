import COpenSSL

extension Crypto {
    /// Ed25519 public key length in bytes.
    public static let ed25519PublicKeyLength = 32
    /// Ed25519 private key length in bytes: the 32-byte seed of RFC 8032, not a 64-byte expanded key.
    public static let ed25519PrivateKeyLength = 32
    /// Ed25519 signature length in bytes.
    public static let ed25519SignatureLength = 64

    /// Whether `signature` is a valid Ed25519 signature (RFC 8032, pure Ed25519) of `message` under `publicKey`,
    /// verified strictly, as ed25519-dalek's `verify_strict` (which iroh uses) does: besides RFC 8032's equation and
    /// its `S < L`, the key A and the signature's R must be canonical encodings (y < p) of points that are not of
    /// small order. Without that, the identity key with R = identity and S = 0 "signs" every message.
    /// A key or signature of the wrong length, or a key that is not a curve point, gives `false`.
    public static func ed25519Verify(
        publicKey: some Collection<UInt8>, signature: some Collection<UInt8>, message: some Collection<UInt8>
    ) -> Bool {
        guard publicKey.count == ed25519PublicKeyLength, signature.count == ed25519SignatureLength else {
            return false
        }
        let signatureBytes = Array(signature)
        guard Ed25519Strict.isAcceptablePoint(Array(publicKey)),
            Ed25519Strict.isAcceptablePoint(signatureBytes[0..<32]),
            Ed25519Strict.isReducedScalar(signatureBytes[32..<64])
        else { return false }
        let key = withBytes(publicKey) {
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.bytePointer, $0.count)
        }
        guard let key else {
            ERR_clear_error()
            return false
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else {
            ERR_clear_error()
            return false
        }
        defer { EVP_MD_CTX_free(context) }
        // Ed25519 hashes internally: no digest is given, and the message goes in with one EVP_DigestVerify call.
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else {
            ERR_clear_error()
            return false
        }
        let result = withBytes(signature) { signature in
            withBytes(message) { message in
                EVP_DigestVerify(context, signature.bytePointer, signature.count, message.bytePointer, message.count)
            }
        }
        if result != 1 { ERR_clear_error() }
        return result == 1
    }

    /// The Ed25519 signature (64 bytes) of `message` under the 32-byte seed `privateKey` (RFC 8032).
    /// - Throws: `CryptoError.invalidKeyLength` unless `privateKey` has 32 bytes.
    public static func ed25519Sign(privateKey: some Collection<UInt8>, message: some Collection<UInt8>)
        throws(CryptoError) -> [UInt8]
    {
        let key = try ed25519PrivateKey(privateKey)
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw .openSSL("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1 else { throw .openSSL("EVP_DigestSignInit") }
        let signature = withBytes(message) { message in
            [UInt8](unsafeUninitializedCapacity: ed25519SignatureLength) { out, initialized in
                var length = out.count
                let ok = EVP_DigestSign(context, out.baseAddress, &length, message.bytePointer, message.count)
                initialized = ok == 1 && length == ed25519SignatureLength ? length : 0
            }
        }
        guard signature.count == ed25519SignatureLength else { throw .openSSL("EVP_DigestSign") }
        return signature
    }

    /// The 32-byte Ed25519 public key for the 32-byte seed `privateKey`.
    /// - Throws: `CryptoError.invalidKeyLength` unless `privateKey` has 32 bytes.
    public static func ed25519PublicKey(privateKey: some Collection<UInt8>) throws(CryptoError) -> [UInt8] {
        let key = try ed25519PrivateKey(privateKey)
        defer { EVP_PKEY_free(key) }
        let publicKey = [UInt8](unsafeUninitializedCapacity: ed25519PublicKeyLength) { out, initialized in
            var length = out.count
            let ok = EVP_PKEY_get_raw_public_key(key, out.baseAddress, &length)
            initialized = ok == 1 && length == ed25519PublicKeyLength ? length : 0
        }
        guard publicKey.count == ed25519PublicKeyLength else { throw .openSSL("EVP_PKEY_get_raw_public_key") }
        return publicKey
    }

    /// An EVP_PKEY for a 32-byte Ed25519 seed; the caller frees it.
    private static func ed25519PrivateKey(_ seed: some Collection<UInt8>) throws(CryptoError) -> OpaquePointer {
        guard seed.count == ed25519PrivateKeyLength else {
            throw .invalidKeyLength(expected: ed25519PrivateKeyLength, actual: seed.count)
        }
        let key = withBytes(seed) { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.bytePointer, $0.count) }
        guard let key else { throw .openSSL("EVP_PKEY_new_raw_private_key(ED25519)") }
        return key
    }
}
