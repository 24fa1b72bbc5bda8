import ChatmailConfig
import ShadowsocksCore
import ShadowsocksServer
import Testing

/// `ShadowsocksSettings(checking:)`, what `chatmailctl check-config` builds: the child's own rules, located, without
/// the supervisor's key store.
@Suite struct SettingsTests {
    static func check(_ text: String) -> [String] {
        do {
            let configuration = try Configuration.parse(
                "[turn]\nenabled = false\n[iroh]\nenabled = false\n[shadowsocks]\n" + text, path: "/x/s.conf")
            _ = try ShadowsocksSettings(checking: configuration)
            return []
        } catch {
            return error.errors.map { "\($0.line ?? 0) \($0.key ?? "")" }
        }
    }

    @Test(
        "Each rule the child checks at start is refused at its line and key",
        arguments: [
            ("listen = \"0.0.0.0:8388\"\nnames = []", "7 [shadowsocks] names"),
            ("names = []\naddresses = []", "6 [shadowsocks] names"),
            ("names = [\"c.example\"]\nkey = \"c2hvcnQ=\"", "7 [shadowsocks] key"),
            ("names = [\"c.example\"]\nallowed_ports = []", "7 [shadowsocks] allowed_ports"),
        ])
    func refused(text: String, expected: String) {
        #expect(Self.check(text) == [expected])
    }

    @Test("Without a key in the file the check passes with a stand-in, for each method; a file's key is checked")
    func standIn() {
        for method in ShadowsocksMethod.allCases {
            #expect(Self.check("names = [\"chat.example\"]\nmethod = \"\(method.rawValue)\"").isEmpty, "\(method)")
        }
        #expect(Self.check("names = [\"chat.example\"]\nmethod = \"aes-256-gcm\"\nkey = \"any password\"").isEmpty)
    }
}
