import COpenSSL

/// An AEAD cipher (AES-GCM or ChaCha20-Poly1305, 12-byte nonce, 16-byte tag) keyed once, for the hot path of
/// a connection.
///
/// `init` creates one `EVP_CIPHER_CTX` for sealing and one for opening and keys both; every `seal` / `open`
/// then only resets the nonce and runs update/final over the caller's memory. The buffer-pointer forms of
/// `seal` and `open` do not allocate: no arrays, no boxes, only stack scalars and libcrypto calls that work
/// inside the existing contexts (errors allocate their description, but only on failure).
///
/// Not `Sendable` and not thread-safe: use one instance per connection direction (or per connection, since
/// the sealing and opening contexts are separate), from one thread or event loop at a time. The caller owns
/// nonce uniqueness: never seal twice with the same key and nonce.
public final class AEAD {
    /// The supported AEAD algorithms.
    public enum Algorithm: Sendable, Hashable, CaseIterable {
        /// AES-128 in GCM mode (16-byte key).
        case aes128GCM
        /// AES-256 in GCM mode (32-byte key).
        case aes256GCM
        /// ChaCha20-Poly1305 as in RFC 8439 (32-byte key).
        case chacha20Poly1305

        /// Key length in bytes: 16 for AES-128-GCM, 32 otherwise.
        public var keyLength: Int {
            switch self {
            case .aes128GCM: 16
            case .aes256GCM, .chacha20Poly1305: 32
            }
        }

        /// Nonce length in bytes (12 for all three).
        public var nonceLength: Int { 12 }

        /// Tag length in bytes (16 for all three).
        public var tagLength: Int { 16 }

        var name: String {
            switch self {
            case .aes128GCM: "AES-128-GCM"
            case .aes256GCM: "AES-256-GCM"
            case .chacha20Poly1305: "ChaCha20-Poly1305"
            }
        }

        var cipher: OpaquePointer? {
            switch self {
            case .aes128GCM: LibCrypto.aes128GCM
            case .aes256GCM: LibCrypto.aes256GCM
            case .chacha20Poly1305: LibCrypto.chacha20Poly1305
            }
        }
    }

    /// The algorithm this instance was keyed for.
    public let algorithm: Algorithm
    private let sealContext: OpaquePointer
    private let openContext: OpaquePointer

    /// Creates and keys the sealing and opening contexts.
    /// - Throws: `CryptoError.invalidKeyLength` unless `key.count == algorithm.keyLength`.
    public init(_ algorithm: Algorithm, key: some Collection<UInt8>) throws(CryptoError) {
        guard key.count == algorithm.keyLength else {
            throw .invalidKeyLength(expected: algorithm.keyLength, actual: key.count)
        }
        guard let cipher = algorithm.cipher else { throw .openSSL("EVP_CIPHER_fetch(\(algorithm.name))") }
        let sealContext = try Self.makeContext(cipher, key: key, encrypt: true)
        let openContext: OpaquePointer
        do {
            openContext = try Self.makeContext(cipher, key: key, encrypt: false)
        } catch {
            EVP_CIPHER_CTX_free(sealContext)
            throw error
        }
        self.algorithm = algorithm
        self.sealContext = sealContext
        self.openContext = openContext
    }

    deinit {
        // Freeing a context also wipes its key schedule.
        EVP_CIPHER_CTX_free(sealContext)
        EVP_CIPHER_CTX_free(openContext)
    }

    /// Encrypts `data` in place and writes the tag to `tag`. `aad` is authenticated but not encrypted (it may
    /// be empty). Does not allocate.
    /// - Throws: `CryptoError.invalidNonceLength` / `.invalidTagLength` unless `nonce` has 12 bytes and `tag`
    ///   16; `.library` if libcrypto fails, in which case `data` holds garbage.
    public func seal(
        nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer, inPlace data: UnsafeMutableRawBufferPointer,
        tag: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        try seal(nonce: nonce, aad: aad, plaintext: UnsafeRawBufferPointer(data), into: data, tag: tag)
    }

    /// Encrypts `plaintext` into `ciphertext` (of the same length; it may be the same memory, not a partial
    /// overlap) and writes the tag to `tag`, like `seal(nonce:aad:inPlace:tag:)`, without a copy first.
    public func seal(
        nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        into ciphertext: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        let context = sealContext
        let tagPointer = try restart(
            context, nonce: nonce, tag: UnsafeRawBufferPointer(tag), lengths: (plaintext.count, ciphertext.count))
        guard Self.authenticate(context, aad), Self.transform(context, plaintext, into: ciphertext),
            Self.finish(context)
        else {
            throw .openSSL("seal(\(algorithm.name))")
        }
        guard
            EVP_CIPHER_CTX_ctrl(
                context, EVP_CTRL_AEAD_GET_TAG, Int32(algorithm.tagLength), UnsafeMutableRawPointer(mutating: tagPointer)
            ) == 1
        else {
            throw .openSSL("EVP_CTRL_AEAD_GET_TAG(\(algorithm.name))")
        }
    }

    /// Decrypts `data` in place and checks it, with `aad`, against `tag`. Does not allocate.
    /// - Throws: `CryptoError.authenticationFailed` if the tag does not verify; then `data` has been zeroed, so
    ///   unauthenticated plaintext never reaches the caller. `.invalidNonceLength` / `.invalidTagLength` unless
    ///   `nonce` has 12 bytes and `tag` 16 (`data` is untouched then).
    public func open(
        nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer, inPlace data: UnsafeMutableRawBufferPointer,
        tag: UnsafeRawBufferPointer
    ) throws(CryptoError) {
        try open(nonce: nonce, aad: aad, ciphertext: UnsafeRawBufferPointer(data), into: data, tag: tag)
    }

    /// Decrypts `ciphertext` into `plaintext` (of the same length; it may be the same memory, not a partial
    /// overlap) and checks the tag, like `open(nonce:aad:inPlace:tag:)`: on failure `plaintext` is zeroed.
    public func open(
        nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        into plaintext: UnsafeMutableRawBufferPointer, tag: UnsafeRawBufferPointer
    ) throws(CryptoError) {
        let context = openContext
        let tagPointer = try restart(
            context, nonce: nonce, tag: tag, lengths: (ciphertext.count, plaintext.count))
        // libcrypto only reads the tag here; the ctrl interface just is not const-correct.
        let tagSet =
            EVP_CIPHER_CTX_ctrl(
                context, EVP_CTRL_AEAD_SET_TAG, Int32(algorithm.tagLength),
                UnsafeMutableRawPointer(mutating: tagPointer)
            ) == 1
        guard tagSet, Self.authenticate(context, aad), Self.transform(context, ciphertext, into: plaintext),
            Self.finish(context)
        else {
            // A tag mismatch fails EVP_CipherFinal_ex; anything else is equally unauthenticated.
            if let base = plaintext.baseAddress {
                base.initializeMemory(as: UInt8.self, repeating: 0, count: plaintext.count)
            }
            ERR_clear_error()
            throw .authenticationFailed
        }
    }

    /// Checks the nonce and tag lengths (and that output and input have the same length) and resets `context`
    /// for a new message: key and cipher stay; only the nonce (and with it the GCM / Poly1305 state) is set.
    /// Returns the tag's address.
    private func restart(
        _ context: OpaquePointer, nonce: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer,
        lengths: (input: Int, output: Int)
    ) throws(CryptoError) -> UnsafeRawPointer {
        precondition(lengths.input == lengths.output, "AEAD: output length differs from input")
        guard nonce.count == algorithm.nonceLength, let noncePointer = nonce.bytePointer else {
            throw .invalidNonceLength(expected: algorithm.nonceLength, actual: nonce.count)
        }
        guard tag.count == algorithm.tagLength, let tagPointer = tag.baseAddress else {
            throw .invalidTagLength(expected: algorithm.tagLength, actual: tag.count)
        }
        guard EVP_CipherInit_ex(context, nil, nil, nil, noncePointer, -1) == 1 else {
            throw .openSSL("EVP_CipherInit_ex(\(algorithm.name), nonce)")
        }
        return tagPointer
    }

    /// Seals `plaintext` and returns ciphertext || tag. Allocates; for tests and cold paths.
    public func seal(nonce: [UInt8], aad: [UInt8] = [], plaintext: [UInt8]) throws(CryptoError) -> [UInt8] {
        var output = plaintext
        output.append(contentsOf: repeatElement(0, count: algorithm.tagLength))
        let split = plaintext.count
        let result: Result<Void, CryptoError> = output.withUnsafeMutableBytes { output in
            nonce.withUnsafeBytes { nonce in
                aad.withUnsafeBytes { aad in
                    Result { () throws(CryptoError) in
                        try seal(
                            nonce: nonce, aad: aad, inPlace: UnsafeMutableRawBufferPointer(rebasing: output[..<split]),
                            tag: UnsafeMutableRawBufferPointer(rebasing: output[split...]))
                    }
                }
            }
        }
        try result.get()
        return output
    }

    /// Opens ciphertext || tag and returns the plaintext. Allocates; for tests and cold paths.
    /// - Throws: `CryptoError.authenticationFailed` if the tag does not verify or the input is shorter than a tag.
    public func open(nonce: [UInt8], aad: [UInt8] = [], ciphertextAndTag: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard ciphertextAndTag.count >= algorithm.tagLength else { throw .authenticationFailed }
        let split = ciphertextAndTag.count - algorithm.tagLength
        var plaintext = Array(ciphertextAndTag[..<split])
        let tag = Array(ciphertextAndTag[split...])
        let result: Result<Void, CryptoError> = plaintext.withUnsafeMutableBytes { plaintext in
            nonce.withUnsafeBytes { nonce in
                aad.withUnsafeBytes { aad in
                    tag.withUnsafeBytes { tag in
                        Result { () throws(CryptoError) in
                            try open(nonce: nonce, aad: aad, inPlace: plaintext, tag: tag)
                        }
                    }
                }
            }
        }
        try result.get()
        return plaintext
    }

    private static func makeContext(_ cipher: OpaquePointer, key: some Collection<UInt8>, encrypt: Bool)
        throws(CryptoError) -> OpaquePointer
    {
        guard let context = EVP_CIPHER_CTX_new() else { throw .openSSL("EVP_CIPHER_CTX_new") }
        let ok = Crypto.withBytes(key) {
            EVP_CipherInit_ex2(context, cipher, $0.bytePointer, nil, encrypt ? 1 : 0, nil)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .openSSL("EVP_CipherInit_ex2")
        }
        return context
    }

    /// Feeds `aad` as additional data (an update with a NULL output pointer).
    @inline(__always)
    private static func authenticate(_ context: OpaquePointer, _ aad: UnsafeRawBufferPointer) -> Bool {
        guard var pointer = aad.bytePointer else { return true }
        var remaining = aad.count
        while remaining > 0 {
            let step = min(remaining, Crypto.maximumStep)
            var written: Int32 = 0
            guard EVP_CipherUpdate(context, nil, &written, pointer, Int32(step)) == 1 else { return false }
            pointer += step
            remaining -= step
        }
        return true
    }

    /// Encrypts or decrypts `input` into `output` (the same memory for in place: exact overlap is allowed by
    /// EVP). Skips empty data: an update with a NULL output pointer would be taken as AAD.
    @inline(__always)
    private static func transform(
        _ context: OpaquePointer, _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard var source = input.bytePointer, var target = output.bytePointer else { return true }
        var remaining = input.count
        while remaining > 0 {
            let step = min(remaining, Crypto.maximumStep)
            var written: Int32 = 0
            guard EVP_CipherUpdate(context, target, &written, source, Int32(step)) == 1, Int(written) == step else {
                return false
            }
            source += step
            target += step
            remaining -= step
        }
        return true
    }

    /// Runs EVP_CipherFinal_ex, which computes (sealing) or checks (opening) the tag. GCM and ChaCha20-Poly1305
    /// output nothing here; a stack scratch buffer stands in for the output pointer.
    @inline(__always)
    private static func finish(_ context: OpaquePointer) -> Bool {
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &scratch) { scratch in
            var written: Int32 = 0
            return EVP_CipherFinal_ex(context, scratch.bytePointer, &written) == 1 && written == 0
        }
    }
}
