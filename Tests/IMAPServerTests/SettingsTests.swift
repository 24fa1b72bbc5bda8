import ChatmailConfig
import IMAPServer
import Testing

@Suite struct IMAPServerSettingsTests {
    let base = "[turn]\nhost = \"chat.example.org\"\n[iroh]\nurl = \"https://chat.example.org\"\n[imap]\n"

    /// check-config and the child refuse a push CA file they cannot read, naming the key.
    @Test func anUnreadablePushCAFileIsAConfigurationError() throws {
        let configuration = try Configuration.parse(
            base + "push_ca_file = \"/nonexistent/push-ca.pem\"\n", path: "/etc/chatmail/supervisor.conf")
        #expect(throws: ConfigurationErrors.self) { try IMAPServerSettings(configuration: configuration) }
        do {
            _ = try IMAPServerSettings(configuration: configuration)
        } catch {
            #expect(
                error.errors.map(\.description) == [
                    "/etc/chatmail/supervisor.conf: [imap] push_ca_file: cannot read /nonexistent/push-ca.pem"
                ])
        }
        let off = try Configuration.parse(
            base + "push = false\npush_ca_file = \"/nonexistent/push-ca.pem\"\n", path: "/etc/chatmail/supervisor.conf")
        let settings = try IMAPServerSettings(configuration: off)
        #expect(!settings.session.push)
        #expect(try IMAPServerSettings(configuration: Configuration.parse(base, path: "/x")).session.push)
    }
}
