import ChatmailConfig

extension TLSIdentity {
    /// The identities `[tls]` configures; without any, a development certificate for
    /// `[tls] names` kept in `<state_dir>/tls` when `self_signed` is on, else an error.
    /// With `creating` false (a child run by the supervisor) the development certificate is only
    /// read: the supervisor made it before it started the child.
    public static func configured(by configuration: Configuration, creating: Bool = true) throws(TLSError)
        -> [TLSIdentity]
    {
        let tls = configuration.tls
        if !tls.certificates.isEmpty {
            return zip(tls.certificates, tls.keys).map { TLSIdentity(certificatePath: $0, keyPath: $1) }
        }
        guard let directory = developmentCertificateDirectory(for: configuration) else {
            throw TLSError(.configuration, "no certificate: set [tls] certificate and key (or self_signed = true)")
        }
        return [
            creating
                ? try DevelopmentCertificate.ensure(in: directory, names: tls.names)
                : try DevelopmentCertificate.existing(in: directory)
        ]
    }

    /// Where the development certificate of `configuration` lives (`<state_dir>/tls`); nil when
    /// it has none (certificates of its own, or no `self_signed`).
    public static func developmentCertificateDirectory(for configuration: Configuration) -> String? {
        let tls = configuration.tls
        guard tls.certificates.isEmpty && tls.selfSigned else { return nil }
        return configuration.supervisor.stateDir + "/tls"
    }
}

extension TLSContextProvider {
    /// The provider for `[tls]` (`creating` the development certificate when asked to and missing); an error
    /// is located at `[tls] certificate`, or at `[tls]` when the file names none.
    public convenience init(configuration: Configuration, alpn: [String] = [], creating: Bool)
        throws(ConfigurationErrors)
    {
        do {
            try self.init(identities: TLSIdentity.configured(by: configuration, creating: creating), alpn: alpn)
        } catch {
            let key = configuration.tls.certificates.isEmpty && !configuration.tls.selfSigned ? nil : "certificate"
            throw ConfigurationErrors(errors: [configuration.error("tls", key, "\(error)")])
        }
    }

    /// What `chatmailctl check-config` checks for a child that serves TLS: the certificates load and match
    /// their keys. A development certificate (`self_signed`) is the supervisor's to make at start, so it passes.
    public static func check(_ configuration: Configuration) throws(ConfigurationErrors) {
        if configuration.tls.certificates.isEmpty && configuration.tls.selfSigned { return }
        _ = try TLSContextProvider(configuration: configuration, creating: false)
    }
}
