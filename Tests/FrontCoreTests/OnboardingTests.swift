import IMAPCore
import Testing

@testable import FrontCore

@Suite struct OnboardingTests {
    static let onboarding = Onboarding(
        domain: "chat.example.org", localpartLength: 9...9, passwordMinLength: 9,
        inviteLink: "dcaccount:https://chat.example.org/new")

    @Test func freshCredentialsMeetTheAccountRules() {
        var random = SystemRandomNumberGenerator()
        for (localparts, passwordMin) in [(9...9, 9), (3...5, 40), (12...20, 1)] {
            let onboarding = Onboarding(
                domain: "chat.example.org", localpartLength: localparts, passwordMinLength: passwordMin,
                inviteLink: nil)
            let rules = AccountRules(
                domain: "chat.example.org", localpartLength: localparts, passwordMinLength: passwordMin)
            var seen = Set<String>()
            for _ in 0..<200 {
                let (email, password) = onboarding.credentials(using: &random)
                #expect(rules.allowsCreation(address: email, password: password), "\(email) \(password)")
                #expect(password.count >= 24)
                seen.insert(email)
            }
            #expect(seen.count > 190)
        }
    }

    @Test func answersAreJSON() {
        var random = SystemRandomNumberGenerator()
        let json = Self.onboarding.newAccountJSON(using: &random)
        #expect(json.hasPrefix("{\"email\": \"") && json.contains("@chat.example.org\", \"password\": \""))
        #expect(Onboarding.refusalJSON("no \"new\"\n\\") == "{\"reason\": \"no \\\"new\\\"\\u000a\\\\\"}\n")
    }

    @Test func autoconfigNamesTheFourServices() {
        let xml = Self.onboarding.autoconfigXML
        #expect(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">"))
        for (port, socket) in [(993, "SSL"), (143, "STARTTLS"), (465, "SSL"), (587, "STARTTLS")] {
            #expect(xml.contains("<port>\(port)</port>\n      <socketType>\(socket)</socketType>"), "\(port)")
        }
        #expect(
            xml.split(separator: "<hostname>chat.example.org</hostname>", omittingEmptySubsequences: false).count == 5)
        let hostile = Onboarding(domain: "a<b&c", localpartLength: 9...9, passwordMinLength: 9, inviteLink: "x\"y")
        #expect(hostile.autoconfigXML.contains("a&lt;b&amp;c") && !hostile.autoconfigXML.contains("a<b"))
        #expect(hostile.indexHTML.contains("x&quot;y"))
    }

    @Test func autoconfigNamesTheFrontPortForEachRouteItPasses() {
        #expect(!Self.onboarding.autoconfigXML.contains("<port>443</port>"))
        var onboarding = Self.onboarding
        onboarding.imapFrontPort = 443
        onboarding.smtpFrontPort = 443
        // Clients try the servers in order: the usual ports first, then the front's, with TLS (ALPN imap/smtp).
        let ports = onboarding.autoconfigXML.split(separator: "<port>", omittingEmptySubsequences: false).dropFirst()
            .map {
                String($0.prefix { $0 != "<" })
            }
        #expect(ports == ["993", "143", "443", "465", "587", "443"])
        let entries = onboarding.autoconfigXML.split(separator: "<port>443</port>", omittingEmptySubsequences: false)
        #expect(entries.count == 3 && entries.dropFirst().allSatisfy { $0.hasPrefix("\n      <socketType>SSL<") })
        #expect(
            entries[0].hasSuffix("<incomingServer type=\"imap\">\n      <hostname>chat.example.org</hostname>\n      "))
        #expect(
            entries[1].hasSuffix("<outgoingServer type=\"smtp\">\n      <hostname>chat.example.org</hostname>\n      "))
        // Only the routes the front passes on.
        onboarding.smtpFrontPort = nil
        #expect(
            onboarding.autoconfigXML.split(separator: "<port>443</port>", omittingEmptySubsequences: false).count == 2)
    }

    @Test func indexPageNamesTheRelayAndTheInvite() {
        let html = Self.onboarding.indexHTML
        #expect(html.contains("<h1>chat.example.org</h1>"))
        #expect(
            html.contains(
                "<a href=\"dcaccount:https://chat.example.org/new\">dcaccount:https://chat.example.org/new</a>"))
        #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<link"))
    }
}
