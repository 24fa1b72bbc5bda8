import ChatmailConfig
import IMAPCore

extension MailDatabase.Settings {
    /// The store settings `[imap]` gives.
    public init(_ imap: IMAPSection) {
        self.init(
            rules: AccountRules(
                domain: imap.mailDomain, localpartLength: imap.localpartMinLength...imap.localpartMaxLength,
                passwordMinLength: imap.passwordMinLength))
        autoCreate = imap.autoCreateAccounts
        quotaBytes = Int64(imap.quotaMB) * 1024 * 1024
        passwordIterations = imap.passwordIterations
    }
}

extension MailDatabase {
    /// Where the configuration keeps the mail store.
    public static func path(for configuration: Configuration) -> String {
        configuration.imap.database.isEmpty
            ? configuration.supervisor.stateDir + "/imap.sqlite" : configuration.imap.database
    }
}
