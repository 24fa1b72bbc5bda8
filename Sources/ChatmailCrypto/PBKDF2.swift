import COpenSSL

extension Crypto {
    /// PBKDF2 (RFC 8018) with HMAC over `digest`: `length` bytes derived from `password` and `salt`.
    public static func pbkdf2(
        _ digest: Digest, password: some Collection<UInt8>, salt: some Collection<UInt8>, iterations: Int, length: Int
    ) -> [UInt8] {
        precondition(iterations > 0 && length > 0, "PBKDF2 needs at least one iteration and one byte")
        return withBytes(password) { password in
            withBytes(salt) { salt in
                [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                    let result = PKCS5_PBKDF2_HMAC(
                        password.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(password.count),
                        salt.bytePointer, Int32(salt.count), Int32(iterations), digest.md, Int32(length),
                        out.baseAddress)
                    precondition(result == 1, "PBKDF2-\(digest.name) failed in libcrypto")
                    initialized = length
                }
            }
        }
    }
}
