import ArgumentParser
import ChatmailSupervisor
import Foundation

@main
struct ChatmailSupervisorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatmail-supervisor",
        abstract: "Runs and watches the chatmail children (IMAP, TURN, iroh relay, Shadowsocks).")

    @Option(name: .long, help: "The configuration file.")
    var config = "/etc/chatmail/supervisor.conf"

    func run() async throws {
        let status = await SupervisorMain.run(configurationPath: config)
        if status != 0 { throw ExitCode(status) }
    }
}
