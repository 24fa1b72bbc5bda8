import ChatmailCrypto
import Foundation

/// Password hashes as `$pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64, 16-byte salt, 32-byte hash).
public enum PasswordHash {
    public static func make(_ password: String, iterations: Int) -> String {
        let salt = Crypto.randomBytes(16)
        let hash = Crypto.pbkdf2(
            .sha256, password: Array(password.utf8), salt: salt, iterations: iterations, length: 32)
        return "$pbkdf2-sha256$\(iterations)$\(Crypto.base64(salt))$\(Crypto.base64(hash))"
    }

    public static func verify(_ password: String, against stored: String) -> Bool {
        let fields = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[1] == "pbkdf2-sha256", let iterations = Int(fields[2]),
            (1...10_000_000).contains(iterations), let salt = Data(base64Encoded: String(fields[3])),
            let expected = Data(base64Encoded: String(fields[4])), expected.count == 32
        else { return false }
        let hash = Crypto.pbkdf2(
            .sha256, password: Array(password.utf8), salt: salt, iterations: iterations, length: 32)
        return Crypto.constantTimeEquals(hash, expected)
    }
}
