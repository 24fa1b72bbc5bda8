import ArgumentParser
import ChatmailConfig
import ChatmailControl
import ChatmailState
import Foundation

/// `chatmailctl ports`: what to open in the firewall for the enabled children.
struct Ports: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ports the enabled children need open in the firewall (--json, --nft).",
        discussion: """
            Which children are enabled is asked from the running supervisor (run-time enable/disable included); \
            while it is not running, the file and the toggles `chatmailctl enable`/`disable` saved say. Loopback listeners are listed but need no rule. Postfix's \
            ports (25, 465, 587) are not chatmail-swift's and not listed.
            """)
    @Option(name: .long, help: "The configuration file.") var config = "/etc/chatmail/supervisor.conf"
    @Flag(name: .long, help: "Print JSON: {\"source\": ..., \"ports\": [{\"child\", \"protocol\", \"port\", ...}]}.")
    var json = false
    @Flag(name: .long, help: "Print an nftables table accepting them (check it with `nft -c -f`).") var nft = false

    func validate() throws {
        if json && nft { throw ValidationError("choose one of --json and --nft") }
    }

    func run() async throws {
        let configuration = loadConfiguration(config)
        let running = await Self.runningEnabledState(configuration)
        // The supervisor down: the toggles it saved, as it reads them when it starts.
        let enabled = try running ?? StateReader(directory: configuration.supervisor.stateDir).savedToggles()
        let ports = configuration.firewallPorts(enabled: enabled)
        let source = running == nil ? "file" : "supervisor"
        if json {
            struct Output: Encodable {
                var source: String
                var ports: [FirewallPort]
            }
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(Output(source: source, ports: ports)), as: UTF8.self))
        } else if nft {
            print(ports.nftRules(), terminator: "")
        } else {
            print(
                running == nil
                    ? "enabled children as the file and the saved enable/disable toggles say (the supervisor is not running):"
                    : "enabled children as the running supervisor says:")
            let rows =
                [["CHILD", "PROTO", "PORT", "ADDRESS", "PURPOSE"]]
                + ports.map { p in
                    [
                        p.child, p.transport.rawValue, p.ports, p.address,
                        p.purpose + (p.isLoopback ? " (loopback)" : ""),
                    ]
                }
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
            for row in rows {
                print(
                    zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(
                        separator: "  "
                    ).trimmingCharacters(in: .whitespaces))
            }
        }
    }

    /// Each child's enabled state from the running supervisor, or nil when it does not answer.
    static func runningEnabledState(_ configuration: Configuration) async -> [String: Bool]? {
        guard let client = try? await ControlClient.connect(path: configuration.supervisor.controlSocket) else {
            return nil
        }
        defer { Task { await client.close() } }
        guard let answer = try? await client.request(.status), answer.ok, let status = answer.status else { return nil }
        return Dictionary(status.sidecars.map { ($0.name, $0.enabled) }) { first, _ in first }
    }
}
