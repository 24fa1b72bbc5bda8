import ChatmailConfig
import ChatmailTLS
import Logging
import ShadowsocksCore

/// What the children share, made by the supervisor alone (the one process that owns the state
/// directory and writes `state.db`) before it starts any child and again at each reload: the
/// development certificate in `<state_dir>/tls` and the generated Shadowsocks key. A child only
/// reads it, so a first start does not depend on which child comes first.
enum SharedState {
    static func prepare(_ configuration: Configuration, store: StateStore, logger: Logger) {
        if let directory = TLSIdentity.developmentCertificateDirectory(for: configuration) {
            do {
                _ = try DevelopmentCertificate.ensure(in: directory, names: configuration.tls.names)
            } catch {
                logger.error("cannot make the development certificate: \(error)")
            }
        }
        let shadowsocks = configuration.shadowsocks
        if shadowsocks.key == nil, let method = ShadowsocksMethod(rawValue: shadowsocks.method) {
            do {
                _ = try shadowsocksKey(for: method, in: store)
            } catch {
                logger.error("cannot make the Shadowsocks key: \(error)")
            }
        }
    }

    /// The generated key for `method`, made on first use and kept in `store`.
    static func shadowsocksKey(for method: ShadowsocksMethod, in store: StateStore) throws -> String {
        try store.setting(method.stateKey) { method.generateKeyText() }
    }
}
