import ArgumentParser
import ChatmailConfig
import ChatmailTLS
import IMAPServer
import ShadowsocksServer
import TURNServer

/// `chatmailctl check-config`: the file loads, and every child enabled in it gets its settings built and checked by
/// the child's own code (`TURNSettings`, `ShadowsocksSettings`, `IMAPServerSettings`, the TLS provider), so OK
/// means each would start. Nothing is opened or made: no key store, no mail store, no development certificate.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file as the children will at start, without touching the supervisor.")
    @Argument(help: "The file to check.") var file: String?
    @Option(name: .long, help: "The file to check (instead of the argument).") var config: String?

    func validate() throws {
        guard (file == nil) != (config == nil) else { throw ValidationError("name one file: FILE or --config FILE") }
    }

    func run() async throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: file ?? config!)
        } catch {
            fail("\n\(error)")
        }
        let errors = Self.childErrors(configuration)
        if !errors.isEmpty { fail("\n\(ConfigurationErrors(errors: errors))") }
        let enabled = configuration.children.filter(\.settings.enabled).map(\.name)
        print("\(configuration.path): OK (enabled in the file: \(enabled.joined(separator: ", ")))")
    }

    /// What the enabled children would refuse at start, each error once.
    static func childErrors(_ configuration: Configuration) -> [ConfigurationError] {
        var errors: [ConfigurationError] = []
        func check(_ body: () throws(ConfigurationErrors) -> Void) {
            do {
                try body()
            } catch {
                errors += error.errors.filter { !errors.contains($0) }
            }
        }
        let tls = configuration.tls
        if configuration.turn.child.enabled {
            check { () throws(ConfigurationErrors) in _ = try TURNSettings(configuration: configuration) }
            // TURN serves TLS only when [tls] has a certificate (or a development one).
            if !tls.certificates.isEmpty || tls.selfSigned {
                check { () throws(ConfigurationErrors) in try TLSContextProvider.check(configuration) }
            }
        }
        if configuration.iroh.child.enabled, configuration.iroh.tlsListen != nil {
            check { () throws(ConfigurationErrors) in try TLSContextProvider.check(configuration) }
        }
        if configuration.shadowsocks.child.enabled {
            check { () throws(ConfigurationErrors) in _ = try ShadowsocksSettings(checking: configuration) }
        }
        if configuration.imap.child.enabled {
            check { () throws(ConfigurationErrors) in _ = try IMAPServerSettings(configuration: configuration) }
            check { () throws(ConfigurationErrors) in try TLSContextProvider.check(configuration) }
        }
        return errors
    }
}
