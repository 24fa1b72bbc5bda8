import ArgumentParser
import ChatmailConfig
import ChatmailQR

/// `chatmailctl invite [--qr]`: the `dcaccount:` link that gets people an account on this relay.
struct Invite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the dcaccount: link that invites people to this relay (--qr: also as a QR code).",
        discussion: """
            Scanned or opened in Delta Chat, the link makes an account: on port 443 the app makes up the \
            credentials and logs in (which creates the account); on another port of the HTTPS front \
            ([iroh] tls_listen) the link names its /new, where the app gets them.
            """)
    @Option(name: .long, help: "The configuration file.") var config = "/etc/chatmail/supervisor.conf"
    @Flag(name: .long, help: "Also print the link as a QR code for the terminal.") var qr = false

    func run() async throws {
        let configuration = loadConfiguration(config)
        guard let link = configuration.inviteLink else {
            fail("no invite link: the HTTPS front ([iroh] tls_listen) is not configured or iroh is disabled")
        }
        printLink(link, qr: qr)
    }
}

/// Prints `link`, and with `qr` the link as a QR code for the terminal.
func printLink(_ link: String, qr: Bool) {
    print(link)
    guard qr else { return }
    do {
        print(try QRCode(encoding: link).render())
    } catch {
        fail("cannot draw the QR code: \(error)")
    }
}
