import ChatmailConfig
import ChatmailSidecar
import Testing

@Suite struct LogPrivacyTests {
    @Test func shownOrHidden() {
        #expect(LogPrivacy.shown("203.0.113.7", noLog: false) == "203.0.113.7")
        #expect(LogPrivacy.shown(42, noLog: true) == LogPrivacy.placeholder)
    }

    /// The interpolation log sites use follows the process-wide mode that `Sidecar.main` sets.
    @Test func interpolationFollowsTheMode() {
        let account = "alice0001@example.org"
        defer { LogPrivacy.noLog = false }
        LogPrivacy.noLog = false
        #expect("login \(personal: account)" == "login alice0001@example.org")
        LogPrivacy.noLog = true
        #expect("login \(personal: account)" == "login [hidden]")
    }

    /// Off by default; children read it once at start, so a reload that changes it restarts every child.
    @Test func configurationKey() throws {
        let base = "[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://x\"\n"
        let off = try Configuration.parse(base, path: "/etc/chatmail/supervisor.conf")
        let on = try Configuration.parse(base + "[supervisor]\nno_log = true\n", path: "/etc/chatmail/supervisor.conf")
        #expect(!off.supervisor.noLog && on.supervisor.noLog)
        for name in Configuration.childNames {
            #expect(on.childSettingsDiffer(from: off, child: name))
            #expect(!on.childSettingsDiffer(from: on, child: name))
        }
    }
}
