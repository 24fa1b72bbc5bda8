import ChatmailConfig
import ChatmailSupervisor
import NIOCore
import ShadowsocksCore

extension ShadowsocksSettings {
    /// The settings-database key of the generated key for `method` (each method has its own key length).
    public static func stateKey(for method: ShadowsocksMethod) -> String { "shadowsocks.key.\(method.rawValue)" }

    /// The credential of `[shadowsocks]`: its `key`, or the one kept in the state database (created there at
    /// first use, so it stays the same across restarts and upgrades).
    public static func credential(from configuration: Configuration) throws -> ShadowsocksCredential {
        let section = configuration.shadowsocks
        guard let method = ShadowsocksMethod(rawValue: section.method) else {
            throw SettingsError("[shadowsocks] method \(section.method) is not supported")
        }
        let keyText: String
        if let configured = section.key {
            keyText = configured
        } else {
            let store = try StateStore(directory: configuration.supervisor.stateDir)
            keyText = try store.setting(stateKey(for: method)) { method.generateKeyText() }
        }
        guard let credential = ShadowsocksCredential(method: method, keyText: keyText) else {
            throw SettingsError(
                "[shadowsocks] key is not a valid \(method.rawValue) key"
                    + (method.is2022 ? " (base64 of exactly \(method.keyLength) bytes)" : ""))
        }
        return credential
    }

    /// Everything from `[shadowsocks]`; throws `SettingsError` for settings the server cannot run with.
    public init(configuration: Configuration) throws {
        let section = configuration.shadowsocks
        let credential = try Self.credential(from: configuration)
        let addresses = section.addresses.compactMap { IPAddress(parsing: $0) }
        var upstreams: [UInt16: DestinationPolicy.Upstream] = [:]
        for (port, address) in section.upstreams {
            upstreams[port] = DestinationPolicy.Upstream(host: address.host, port: address.port)
        }
        let policy = DestinationPolicy(names: section.names, addresses: addresses, upstreams: upstreams)
        guard !policy.names.isEmpty || !policy.addresses.isEmpty else {
            throw SettingsError(
                "[shadowsocks] names or addresses: this server's names or addresses are needed (the only targets "
                    + "clients may reach; localhost and wildcard addresses do not count)")
        }
        guard !upstreams.isEmpty else { throw SettingsError("[shadowsocks] allowed_ports is empty") }
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

    /// The salt history's file: one per method, as each method's salts stand apart.
    public static func saltFile(stateDirectory: String, method: ShadowsocksMethod) -> String {
        "\(stateDirectory)/shadowsocks-salts.\(method.rawValue)"
    }
}

/// A setting the server cannot run with.
public struct SettingsError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
