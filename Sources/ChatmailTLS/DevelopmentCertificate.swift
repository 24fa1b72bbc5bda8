import COpenSSL
import Foundation

/// A self-signed certificate for development setups, made once in a directory and reused.
///
/// Several processes may want it at the same moment (every child of a first start): the
/// supervisor makes it before it starts any child (`ensure`), and a supervised child only reads
/// it (`existing`). `ensure` is safe against other processes anyway: it works under an `flock`
/// on `directory/.lock`, and writes each file to a temporary name renamed into place, the key
/// first and the certificate last, so whoever finds the certificate finds the whole pair.
public enum DevelopmentCertificate {
    /// Where the pair lives in `directory`: `dev-cert.pem` and `dev-key.pem`.
    public static func identity(in directory: String) -> TLSIdentity {
        TLSIdentity(certificatePath: directory + "/dev-cert.pem", keyPath: directory + "/dev-key.pem")
    }

    /// The identity in `directory`, created for `names` if missing. IP literals among the names
    /// become IP entries of the subjectAltName.
    public static func ensure(in directory: String, names: [String]) throws(TLSError) -> TLSIdentity {
        let identity = identity(in: directory)
        if isComplete(identity) { return identity }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TLSError(.configuration, "cannot create \(directory): \(error)")
        }
        return try AtomicFile.withLock(in: directory) { () throws(TLSError) -> TLSIdentity in
            if isComplete(identity) { return identity }  // another process made it meanwhile
            let names = names.isEmpty ? ["localhost"] : names
            let san = names.map { isIPLiteral($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
            var certificate: UnsafeMutablePointer<CChar>?
            var key: UnsafeMutablePointer<CChar>?
            var certificateLength = 0
            var keyLength = 0
            guard cm_make_self_signed_pem(names[0], san, 825, &certificate, &certificateLength, &key, &keyLength) == 1,
                let certificate, let key
            else {
                throw .configuration("cannot make a development certificate")
            }
            defer {
                free(certificate)
                free(key)
            }
            func bytes(_ pointer: UnsafeMutablePointer<CChar>, _ count: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(start: pointer, count: count)
            }
            try AtomicFile.write(bytes(key, keyLength), to: identity.keyPath, mode: 0o600)
            try AtomicFile.write(bytes(certificate, certificateLength), to: identity.certificatePath, mode: 0o644)
            return identity
        }
    }

    /// The identity in `directory` as someone else made it; an error when it is not there.
    public static func existing(in directory: String) throws(TLSError) -> TLSIdentity {
        let identity = identity(in: directory)
        guard isComplete(identity) else {
            throw TLSError(
                .configuration,
                "no development certificate in \(directory) (chatmail-supervisor makes it before it starts the children)"
            )
        }
        return identity
    }

    /// The certificate is written last, so with it the key is there too.
    private static func isComplete(_ identity: TLSIdentity) -> Bool {
        let files = FileManager.default
        return files.fileExists(atPath: identity.certificatePath) && files.fileExists(atPath: identity.keyPath)
    }

    private static func isIPLiteral(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }
}
