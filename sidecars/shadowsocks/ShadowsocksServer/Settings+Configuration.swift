import ChatmailConfig
import ChatmailCrypto
import NIOCore
import ShadowsocksCore

extension ShadowsocksSettings {
    /// The credential of `[shadowsocks]`: its `key`, or else `generatedKey`, the one chatmail-supervisor keeps in
    /// its state database for the method (made at its start, so it stays the same across restarts and upgrades).
    public static func credential(from configuration: Configuration, generatedKey: String?) throws(ConfigurationErrors)
        -> ShadowsocksCredential
    {
        let section = configuration.shadowsocks
        func fail(_ key: String, _ message: String) -> ConfigurationErrors {
            ConfigurationErrors(errors: [configuration.error("shadowsocks", key, message)])
        }
        guard let method = ShadowsocksMethod(rawValue: section.method) else {
            throw fail("method", "\(section.method) is not supported")
        }
        guard let keyText = section.key ?? generatedKey else {
            throw fail(
                "key",
                "not set, and chatmail-supervisor has not made one yet in \(configuration.supervisor.stateDir)/state.db "
                    + "(it does when it starts): set key, or start the supervisor")
        }
        guard let credential = ShadowsocksCredential(method: method, keyText: keyText) else {
            throw fail(
                "key",
                "not a valid \(method.rawValue) key"
                    + (method.is2022 ? " (base64 of exactly \(method.keyLength) bytes)" : ""))
        }
        return credential
    }

    /// Everything from `[shadowsocks]` (`generatedKey` as for `credential`); throws, located at the key, for
    /// settings the server cannot run with.
    public init(configuration: Configuration, generatedKey: String?) throws(ConfigurationErrors) {
        let section = configuration.shadowsocks
        let credential = try Self.credential(from: configuration, generatedKey: generatedKey)
        let addresses = section.addresses.compactMap { IPAddress(parsing: $0) }
        var upstreams: [UInt16: DestinationPolicy.Upstream] = [:]
        for (port, address) in section.upstreams {
            upstreams[port] = DestinationPolicy.Upstream(host: address.host, port: address.port)
        }
        let policy = DestinationPolicy(names: section.names, addresses: addresses, upstreams: upstreams)
        guard !policy.names.isEmpty || !policy.addresses.isEmpty else {
            throw ConfigurationErrors(errors: [
                configuration.error(
                    "shadowsocks", section.addresses.isEmpty ? "names" : "addresses",
                    "this server's names or addresses are needed (the only targets clients may reach; localhost "
                        + "and wildcard addresses do not count): set names, addresses, or [tls] names")
            ])
        }
        guard !upstreams.isEmpty else {
            throw ConfigurationErrors(errors: [configuration.error("shadowsocks", "allowed_ports", "must not be empty")]
            )
        }
        func amount(_ seconds: Double) -> TimeAmount { .milliseconds(Int64(seconds * 1000)) }
        self.init(
            credential: credential, policy: policy, handshakeTimeout: amount(section.handshakeTimeout),
            idleTimeout: amount(section.idleTimeout), connectTimeout: amount(section.connectTimeout),
            maxHalfOpen: section.maxHalfOpen, maxHalfOpenPerSource: section.maxHalfOpenPerSource,
            maxHalfOpenPerNetwork: section.maxHalfOpenPerNetwork,
            maxConnections: section.maxConnections,
            replayHistory: section.replayHistory,
            saltFile: Self.saltFile(stateDirectory: configuration.supervisor.stateDir, method: credential.method))
    }

    /// What `chatmailctl check-config` builds: the same checks, without the supervisor's key store. Without
    /// `[shadowsocks] key` a stand-in key of the method's form takes the place of the one the supervisor makes.
    public init(checking configuration: Configuration) throws(ConfigurationErrors) {
        let method = ShadowsocksMethod(rawValue: configuration.shadowsocks.method)
        let standIn = method.map { $0.is2022 ? Crypto.base64(Array(repeating: 0, count: $0.keyLength)) : "stand-in" }
        try self.init(configuration: configuration, generatedKey: standIn)
    }

    /// The salt history's file: one per method, as each method's salts stand apart.
    public static func saltFile(stateDirectory: String, method: ShadowsocksMethod) -> String {
        "\(stateDirectory)/shadowsocks-salts.\(method.rawValue)"
    }
}
