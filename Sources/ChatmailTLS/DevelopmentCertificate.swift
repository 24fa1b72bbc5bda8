import COpenSSL
import Foundation

/// A self-signed certificate for development setups, made once in a directory and reused.
public enum DevelopmentCertificate {
    /// The identity in `directory` (`dev-cert.pem`, `dev-key.pem`), created for `names` if missing.
    /// IP literals among the names become IP entries of the subjectAltName.
    public static func ensure(in directory: String, names: [String]) throws(TLSError) -> TLSIdentity {
        let identity = TLSIdentity(certificatePath: directory + "/dev-cert.pem", keyPath: directory + "/dev-key.pem")
        let files = FileManager.default
        if files.fileExists(atPath: identity.certificatePath) && files.fileExists(atPath: identity.keyPath) {
            return identity
        }
        do {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TLSError(.configuration, "cannot create \(directory): \(error)")
        }
        let names = names.isEmpty ? ["localhost"] : names
        let san = names.map { isIPLiteral($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
        guard cm_make_self_signed(names[0], san, 825, identity.certificatePath, identity.keyPath) == 1 else {
            throw .configuration("cannot make a development certificate")
        }
        return identity
    }

    private static func isIPLiteral(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }
}
