/// What the front's site serves for onboarding: fresh credentials for `POST /new`, the Thunderbird-format
/// autoconfiguration, and the site's root page. Pure; randomness passed in.
public struct Onboarding: Sendable, Equatable {
    /// The mail domain of the accounts (`[imap] mail_domain`).
    public var domain: String
    /// The account rules of `[imap]` a fresh account must meet (it is created by its first login).
    public var localpartLength: ClosedRange<Int>
    public var passwordMinLength: Int
    /// The `dcaccount:` link for this relay, shown on the root page; nil: none.
    public var inviteLink: String?
    /// The front's port, where it passes ALPN `imap` (`smtp`) on: autoconfiguration lists it as a further IMAP
    /// (SMTP) server with TLS, as chatmail relays list 443, so that clients behind a network that blocks 993
    /// and 465 configure it; nil: that route is closed.
    public var imapFrontPort: Int?
    public var smtpFrontPort: Int?

    public init(
        domain: String, localpartLength: ClosedRange<Int>, passwordMinLength: Int, inviteLink: String?,
        imapFrontPort: Int? = nil, smtpFrontPort: Int? = nil
    ) {
        self.domain = domain
        self.localpartLength = localpartLength
        self.passwordMinLength = passwordMinLength
        self.inviteLink = inviteLink
        self.imapFrontPort = imapFrontPort
        self.smtpFrontPort = smtpFrontPort
    }

    /// A fresh random address and password: a localpart of `a-z 0-9` (a letter first) of 9 characters, or the
    /// nearest length the rules allow, and a password of at least 24 characters from `A-Z a-z 0-9`.
    public func credentials(using random: inout some RandomNumberGenerator) -> (email: String, password: String) {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let lower = letters + Array("0123456789")
        let all = lower + Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let length = min(max(9, localpartLength.lowerBound), localpartLength.upperBound)
        var localpart = [letters.randomElement(using: &random)!]
        localpart += (1..<length).map { _ in lower.randomElement(using: &random)! }
        let password = (0..<max(24, passwordMinLength)).map { _ in all.randomElement(using: &random)! }
        return ("\(String(localpart))@\(domain)", String(password))
    }

    /// `{"email": ..., "password": ...}` for `POST /new`.
    public func newAccountJSON(using random: inout some RandomNumberGenerator) -> String {
        let (email, password) = credentials(using: &random)
        return "{\"email\": \(Self.jsonString(email)), \"password\": \(Self.jsonString(password))}\n"
    }

    /// `{"reason": ...}`: why `/new` gives no account.
    public static func refusalJSON(_ reason: String) -> String { "{\"reason\": \(jsonString(reason))}\n" }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Thunderbird's autoconfiguration (`config-v1.1.xml`): IMAP 993 (TLS) and 143 (STARTTLS), SMTP 465 (TLS)
    /// and 587 (STARTTLS) on the mail domain, then each front route's port (TLS), the address as the user name.
    /// Clients try them in this order.
    public var autoconfigXML: String {
        let domain = Self.xmlEscaped(domain)
        func server(_ kind: String, _ type: String, _ port: Int, _ socket: String) -> String {
            """
                <\(kind) type="\(type)">
                  <hostname>\(domain)</hostname>
                  <port>\(port)</port>
                  <socketType>\(socket)</socketType>
                  <authentication>password-cleartext</authentication>
                  <username>%EMAILADDRESS%</username>
                </\(kind)>

            """
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <clientConfig version="1.1">
              <emailProvider id="\(domain)">
                <domain>\(domain)</domain>
                <displayName>\(domain) chatmail</displayName>
                <displayShortName>\(domain)</displayShortName>

            """
                + server("incomingServer", "imap", 993, "SSL") + server("incomingServer", "imap", 143, "STARTTLS")
                + (imapFrontPort.map { server("incomingServer", "imap", $0, "SSL") } ?? "")
                + server("outgoingServer", "smtp", 465, "SSL") + server("outgoingServer", "smtp", 587, "STARTTLS")
                + (smtpFrontPort.map { server("outgoingServer", "smtp", $0, "SSL") } ?? "")
                    + """
                      </emailProvider>
                    </clientConfig>

                    """
    }

    /// The site's root page: the relay's name and the invite link, no scripts, no external assets.
    public var indexHTML: String {
        let name = Self.xmlEscaped(domain)
        let invite =
            inviteLink.map {
                let link = Self.xmlEscaped($0)
                return "<p>To get an account, open this link with Delta Chat, or scan it as a QR code "
                    + "(<code>chatmailctl invite --qr</code>):</p>\n<p><a href=\"\(link)\">\(link)</a></p>\n"
            } ?? ""
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8"><title>\(name)</title></head>
            <body>
            <h1>\(name)</h1>
            <p>A <a href="https://chatmail.at">chatmail</a> relay for <a href="https://delta.chat">Delta Chat</a>.</p>
            \(invite)</body>
            </html>

            """
    }

    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
