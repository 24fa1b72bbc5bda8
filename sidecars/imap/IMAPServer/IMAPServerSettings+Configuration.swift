import ChatmailConfig
import Foundation
import IMAPCore
import NIOCore

extension IMAPServerSettings {
    /// The server's settings from `[imap]` (every value was range-checked when the file loaded), built by the
    /// child at start and by `chatmailctl check-config` alike. Opens nothing: the mail store is the child's.
    public init(configuration: Configuration) throws(ConfigurationErrors) {
        let imap = configuration.imap
        if imap.push && !imap.pushCAFile.isEmpty && !FileManager.default.isReadableFile(atPath: imap.pushCAFile) {
            throw ConfigurationErrors(errors: [
                .init(
                    file: configuration.path, line: nil, key: "[imap] push_ca_file",
                    message: "cannot read \(imap.pushCAFile)")
            ])
        }
        self.init()
        session.startTLSAvailable = imap.startTLS
        session.loginRequiresTLS = !imap.plaintextLogin
        var metadata: [String: String] = [:]
        if !imap.comment.isEmpty { metadata["/shared/comment"] = imap.comment }
        if !imap.admin.isEmpty { metadata["/shared/admin"] = imap.admin }
        if imap.maxSMTPRecipients > 0 {
            metadata["/shared/vendor/deltachat/maxsmtprecipients"] = "\(imap.maxSMTPRecipients)"
        }
        session.serverMetadata = metadata
        session.push = imap.push
        session.maxPushTokenSize = imap.maxPushTokenSize
        limits = IMAPLimits(lineLength: imap.maxLineLength, literalSize: imap.maxLiteralSize)
        maxSessionsPerAccount = imap.maxSessionsPerAccount
        sourceLimits = SourceLimits.Settings(
            failedLoginsPerMinute: imap.maxFailedLoginsPerMinute,
            accountCreationsPerHour: imap.maxAccountCreationsPerHour)
        keepaliveInterval = .seconds(Int64(imap.idleKeepalive))
        handshakeTimeout = .seconds(Int64(imap.handshakeTimeout))
        loginTimeout = .seconds(Int64(imap.loginTimeout))
        sendTimeout = .seconds(Int64(imap.sendTimeout))
    }
}
