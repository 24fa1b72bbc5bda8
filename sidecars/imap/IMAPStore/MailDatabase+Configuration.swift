import ChatmailConfig
import Foundation
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
        maxPushTokens = imap.maxPushTokens
        queuePushes = imap.push
    }
}

extension MailDatabase {
    /// The settings of `configuration`, with account creation closed by `<state_dir>/nocreate`
    /// and `[imap] min_free_space`.
    public static func settings(for configuration: Configuration) -> Settings {
        var settings = Settings(configuration.imap)
        settings.creationGate = AccountCreationGate(for: configuration)
        return settings
    }

    /// Where the configuration keeps the mail store.
    public static func path(for configuration: Configuration) -> String {
        configuration.imap.database.isEmpty
            ? configuration.supervisor.stateDir + "/imap.sqlite" : configuration.imap.database
    }
}

extension AccountCreationGate {
    public init(for configuration: Configuration) {
        self.init(
            noCreatePath: configuration.supervisor.stateDir + "/nocreate",
            storeDirectory: (MailDatabase.path(for: configuration) as NSString).deletingLastPathComponent,
            minFreeBytes: configuration.imap.minFreeSpace)
    }
}
