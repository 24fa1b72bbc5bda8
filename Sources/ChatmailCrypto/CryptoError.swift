import COpenSSL

/// Errors from ChatmailCrypto. Bad input (a key, nonce or tag of the wrong length, an output length out of
/// range, a tag that does not verify) is reported as one of these, never as a trap.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The key has the wrong length for the algorithm.
    case invalidKeyLength(expected: Int, actual: Int)
    /// The nonce has the wrong length for the algorithm.
    case invalidNonceLength(expected: Int, actual: Int)
    /// The tag buffer has the wrong length for the algorithm.
    case invalidTagLength(expected: Int, actual: Int)
    /// The requested output length is outside `0...maximum` (HKDF allows at most 255 × the digest length).
    case invalidOutputLength(requested: Int, maximum: Int)
    /// An AEAD tag did not verify. The buffer that was decrypted in place has been zeroed.
    case authenticationFailed
    /// libcrypto reported a failure in `operation`; `detail` is OpenSSL's first queued error, if there was one.
    case library(operation: String, detail: String)

    public var description: String {
        switch self {
        case .invalidKeyLength(let expected, let actual):
            "invalid key length: expected \(expected) bytes, got \(actual)"
        case .invalidNonceLength(let expected, let actual):
            "invalid nonce length: expected \(expected) bytes, got \(actual)"
        case .invalidTagLength(let expected, let actual):
            "invalid tag length: expected \(expected) bytes, got \(actual)"
        case .invalidOutputLength(let requested, let maximum):
            "invalid output length \(requested): must be between 0 and \(maximum) bytes"
        case .authenticationFailed:
            "authentication failed: the AEAD tag does not match"
        case .library(let operation, let detail):
            detail.isEmpty ? "libcrypto: \(operation) failed" : "libcrypto: \(operation) failed: \(detail)"
        }
    }

    /// A `.library` error for `operation`, described by the first error on this thread's OpenSSL error queue.
    /// Empties the queue, so that a stale entry cannot confuse later OpenSSL calls (TLS reads its queue).
    static func openSSL(_ operation: String) -> CryptoError {
        let code = ERR_get_error()
        var detail = ""
        if code != 0 {
            var text = [CChar](repeating: 0, count: 256)
            text.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, $0.count) }
            detail = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        ERR_clear_error()
        return .library(operation: operation, detail: detail)
    }
}
