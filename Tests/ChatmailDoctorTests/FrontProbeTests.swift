import ChatmailConfig
import FrontCore
import Testing

@testable import ChatmailDoctor

@Suite struct FrontProbeTests {
    /// What the front serves (FrontCore) passes when it names the domain and lists the front's port for IMAP.
    @Test func theFrontsAutoconfigFilePassesAndAnotherDomainFails() {
        func xml(_ domain: String, imapFrontPort: Int?) -> String {
            Onboarding(
                domain: domain, localpartLength: 9...9, passwordMinLength: 9, inviteLink: nil,
                imapFrontPort: imapFrontPort
            ).autoconfigXML
        }
        let served = FrontProbe.autoconfigVerdict(
            xml("chat.example.org", imapFrontPort: 443), mailDomain: "chat.example.org", frontPort: 443)
        #expect(served.0 == .pass && served.1.hasSuffix("names chat.example.org, IMAP on 993, 143, 443"), "\(served)")
        let other = FrontProbe.autoconfigVerdict(
            xml("other.example.org", imapFrontPort: 443), mailDomain: "chat.example.org", frontPort: 443)
        #expect(other.0 == .fail && other.2 == .discoveryMismatch && other.1.contains("other.example.org"))
        let unlisted = FrontProbe.autoconfigVerdict(
            xml("chat.example.org", imapFrontPort: nil), mailDomain: "chat.example.org", frontPort: 443)
        #expect(unlisted.0 == .warn && unlisted.1.contains("not the front's 443"))
        let html = FrontProbe.autoconfigVerdict("<html>hi</html>", mailDomain: "chat.example.org", frontPort: 443)
        #expect(html.0 == .fail && html.2 == .protocolError)
    }

    /// The link `chatmailctl invite` prints (ChatmailConfig) points at the front that was tested.
    @Test func theInviteLinkMustLeadToTheTestedFront() throws {
        func link(_ tlsListen: String) throws -> String? {
            try Configuration.parse(
                "[imap]\nmail_domain = \"chat.example.org\"\n[turn]\nenabled = false\n[iroh]\nlisten = \"127.0.0.1:3340\"\n"
                    + "tls_listen = \"\(tlsListen)\"\n", path: "/etc/chatmail/supervisor.conf"
            ).inviteLink
        }
        let onPort443 = try link("0.0.0.0:443")
        let verdict = FrontProbe.inviteVerdict(onPort443, host: "chat.example.org", port: 443) { _ in false }
        #expect(verdict.0 == .pass, "\(verdict)")
        let offPort = try link("127.0.0.1:3341")
        #expect(FrontProbe.inviteVerdict(offPort, host: "chat.example.org", port: 3341) { _ in false }.0 == .pass)
        let wrongPort = FrontProbe.inviteVerdict(offPort, host: "chat.example.org", port: 443) { _ in false }
        #expect(wrongPort.0 == .fail && wrongPort.2 == .discoveryMismatch)
        // Tested at another name (--imap-host): the link's name must lead to this server.
        let elsewhere = FrontProbe.inviteVerdict(onPort443, host: "10.77.0.1", port: 443) { _ in false }
        #expect(elsewhere.0 == .fail && elsewhere.2 == .wrongHost)
        #expect(FrontProbe.inviteVerdict(onPort443, host: "10.77.0.1", port: 443) { _ in true }.0 == .pass)
        let ipv6 = FrontProbe.inviteVerdict("dcaccount:https://[::1]:3341/new", host: "::1", port: 3341) { _ in false }
        #expect(ipv6.0 == .pass, "\(ipv6)")
        for bad in ["dcaccount:chat.example.org", "dcaccount:https://chat.example.org/other", nil] {
            #expect(FrontProbe.inviteVerdict(bad, host: "chat.example.org", port: 443) { _ in true }.0 == .fail)
        }
    }
}
