import COpenSSL

/// Cryptographic helpers on the system's libcrypto (OpenSSL 3). The TLS issue extends this module.
///
/// Everything here is a thin layer over EVP. Functions that can only fail on bad input throw `CryptoError`;
/// those that cannot fail on any input (digests, HMAC, randomness) trap only if libcrypto itself is broken.
public enum Crypto {
    /// HMAC-SHA1 of `message` under `key` (20 bytes), as TURN's REST credentials use it.
    public static func hmacSHA1(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        hmac(.sha1, key: key, message: message)
    }

    /// `count` bytes from the system's CSPRNG.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "randomBytes: negative count")
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            randomBytes(into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// Fills `buffer` from the system's CSPRNG, without allocating.
    public static func randomBytes(into buffer: UnsafeMutableRawBufferPointer) {
        guard var pointer = buffer.baseAddress else { return }
        var remaining = buffer.count
        while remaining > 0 {
            let step = min(remaining, maximumStep)
            let ok = RAND_bytes(pointer.assumingMemoryBound(to: UInt8.self), Int32(step))
            precondition(ok == 1, "RAND_bytes failed")
            pointer += step
            remaining -= step
        }
    }

    /// Whether `a` and `b` are equal, in time that depends only on their lengths (CRYPTO_memcmp).
    /// Use it to compare MACs, tags and salts an attacker can probe.
    public static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return withBytes(a) { x in withBytes(b) { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0 } }
    }

    /// The largest length handed to one libcrypto call that takes an `int` length.
    static let maximumStep = 1 << 30

    /// Runs `body` on the bytes of `bytes`: without copying when the collection is contiguous. The buffer's
    /// `baseAddress` is never nil, even when it is empty, so it can go straight to C.
    static func withBytes<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafeBytes(of: &zero) { body(UnsafeRawBufferPointer(rebasing: $0[0..<0])) }
        }
        if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer {
    /// The start as `const unsigned char *`, as libcrypto takes it.
    var bytePointer: UnsafePointer<UInt8>? { baseAddress?.assumingMemoryBound(to: UInt8.self) }
}

extension UnsafeMutableRawBufferPointer {
    /// The start as `unsigned char *`, as libcrypto takes it.
    var bytePointer: UnsafeMutablePointer<UInt8>? { baseAddress?.assumingMemoryBound(to: UInt8.self) }
}

/// Algorithms fetched once from the default provider (an explicit fetch avoids OpenSSL 3's per-call implicit
/// fetch). The handles are immutable and reference counted, so sharing them between threads is safe.
enum LibCrypto {
    nonisolated(unsafe) static let md5 = EVP_MD_fetch(nil, "MD5", nil)
    nonisolated(unsafe) static let sha1 = EVP_MD_fetch(nil, "SHA1", nil)
    nonisolated(unsafe) static let sha256 = EVP_MD_fetch(nil, "SHA256", nil)
    nonisolated(unsafe) static let hkdf = EVP_KDF_fetch(nil, "HKDF", nil)
    nonisolated(unsafe) static let aes128GCM = EVP_CIPHER_fetch(nil, "AES-128-GCM", nil)
    nonisolated(unsafe) static let aes256GCM = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)
    nonisolated(unsafe) static let chacha20Poly1305 = EVP_CIPHER_fetch(nil, "ChaCha20-Poly1305", nil)
}
