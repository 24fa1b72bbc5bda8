import ChatmailConfig

extension TLSIdentity {
    /// The identities `[tls]` configures; without any, a development certificate for
    /// `[tls] names` kept in `<state_dir>/tls` when `self_signed` is on, else an error.
    public static func configured(by configuration: Configuration) throws(TLSError) -> [TLSIdentity] {
        let tls = configuration.tls
        if !tls.certificates.isEmpty {
            return zip(tls.certificates, tls.keys).map { TLSIdentity(certificatePath: $0, keyPath: $1) }
        }
        guard tls.selfSigned else {
            throw TLSError(.configuration, "no certificate: set [tls] certificate and key (or self_signed = true)")
        }
        return [try DevelopmentCertificate.ensure(in: configuration.supervisor.stateDir + "/tls", names: tls.names)]
    }
}
