/// The HTTPS front's checks (`[iroh] tls_listen`: port 443 in production), at the public name clients use: TLS with
/// ALPN `imap` gets the IMAP greeting and ALPN `smtp` the SMTP banner through the front's routes (each with the
/// certificate check, since each route ends at another TLS server), `/generate_204` and the autoconfig file over
/// ALPN `http/1.1`, and the invite link pointing at this front. `POST /new` is left alone: it would spend the
/// operator's rate limit.
public struct FrontProbe {
    public static let autoconfigPath = "/.well-known/autoconfig/mail/config-v1.1.xml"

    public var host: String
    public var port: UInt16
    /// `[imap] mail_domain`: what the autoconfig file must name.
    public var mailDomain: String
    /// Whether `[iroh] smtp_upstream` is set (else the front closes ALPN `smtp`, and that step is skipped).
    public var smtpRouted: Bool
    /// What `chatmailctl invite` prints.
    public var inviteLink: String?
    public var timeout: Duration

    public init(
        host: String, port: UInt16, mailDomain: String, smtpRouted: Bool, inviteLink: String?, timeout: Duration
    ) {
        (self.host, self.port, self.mailDomain, self.smtpRouted) = (host, port, mailDomain, smtpRouted)
        (self.inviteLink, self.timeout) = (inviteLink, timeout)
    }

    public func run() -> [DoctorStep] {
        let log = StepLog(service: "iroh", host: host)
        log.run("front imap", timeout: timeout) { deadline throws(NetError) in
            try greeting(alpn: "imap", prefix: "* OK", what: "IMAP greeting", deadline: deadline)
        }
        if smtpRouted {
            log.run("front smtp", timeout: timeout) { deadline throws(NetError) in
                try greeting(alpn: "smtp", prefix: "220", what: "SMTP banner", deadline: deadline)
            }
        } else {
            log.steps.append(
                DoctorStep(
                    service: "iroh", step: "front smtp", verdict: .skip,
                    detail: "not configured: no [iroh] smtp_upstream, so the front closes ALPN smtp"))
        }
        log.run("front https", timeout: timeout) { deadline throws(NetError) in
            let (tls, head, _) = try get("/generate_204", deadline: deadline)
            guard head.status == 204 else { throw .protocolError("/generate_204 answered \(head.status), not 204") }
            return try certified(tls, "https://\(host):\(port)/generate_204: 204")
        }
        log.run("front autoconfig", timeout: timeout) { deadline throws(NetError) in
            let (_, head, body) = try get(Self.autoconfigPath, deadline: deadline)
            guard head.status == 200 else { throw .protocolError("\(Self.autoconfigPath) answered \(head.status)") }
            let (verdict, detail, cause) = Self.autoconfigVerdict(
                String(decoding: body, as: UTF8.self), mailDomain: mailDomain, frontPort: port)
            return Outcome(value: (), detail: detail, verdict: verdict, cause: cause)
        }
        let (verdict, detail, cause) = Self.inviteVerdict(inviteLink, host: host, port: port)
        log.steps.append(
            DoctorStep(service: "iroh", step: "front invite", verdict: verdict, detail: detail, cause: cause))
        return log.steps
    }

    /// TLS to the front with one ALPN protocol. The front passes `imap` and `smtp` on without terminating TLS, so
    /// a route whose upstream is down shows as the front closing the connection in the handshake.
    private func connect(alpn: String, deadline: Deadline) throws(NetError) -> (TLSStream, StreamReader) {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        do {
            let tls = try TLSStream(over: socket, serverName: host, alpn: [alpn], deadline: deadline)
            return (tls, StreamReader(tls))
        } catch {
            socket.close()
            guard case .closed = error else { throw error }
            throw .protocolError(
                "\(host):\(port) closed the connection in the TLS handshake with ALPN \(alpn)"
                    + (alpn == "http/1.1" ? "" : " (is the front's \(alpn) upstream running?)"))
        }
    }

    /// The first line a routed service sends, which must start with `prefix`.
    private func greeting(alpn: String, prefix: String, what: String, deadline: Deadline) throws(NetError)
        -> Outcome<Void>
    {
        let (tls, reader) = try connect(alpn: alpn, deadline: deadline)
        defer { tls.close() }
        let line = try reader.readLine(deadline: deadline)
        guard line.hasPrefix(prefix) else { throw .protocolError("ALPN \(alpn) answered: \(line.prefix(80))") }
        return try certified(tls, "\(host):\(port) ALPN \(alpn): \(what)")
    }

    /// `GET path` over ALPN http/1.1: the head and the body.
    private func get(_ path: String, deadline: Deadline) throws(NetError) -> (TLSStream, HTTPHead, [UInt8]) {
        let (tls, reader) = try connect(alpn: "http/1.1", deadline: deadline)
        defer { tls.close() }
        let head = try reader.request(
            "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n", deadline: deadline)
        return (tls, head, head.status == 204 ? [] : try reader.body(after: head, deadline: deadline))
    }

    /// The step's outcome with the certificate's verdict for `host`.
    private func certified(_ tls: TLSStream, _ seen: String) throws(NetError) -> Outcome<Void> {
        guard let certificate = tls.certificate else { throw .tls("no certificate") }
        let (verdict, text, cause) = certificate.verdict(name: host)
        return Outcome(value: (), detail: "\(seen); \(text)", verdict: verdict, cause: cause)
    }

    /// Whether the autoconfig file names the mail domain, and lists the front's port for IMAP (Delta Chat uses
    /// only the servers listed there, so a client whose network blocks 993 needs the front's port in it).
    static func autoconfigVerdict(_ xml: String, mailDomain: String, frontPort: UInt16) -> (
        DoctorStep.Verdict, String, Cause?
    ) {
        guard xml.contains("<clientConfig") else {
            return (.fail, "not an autoconfig file: \(xml.prefix(60))", .protocolError)
        }
        let domains = elements("domain", in: xml).map { $0.lowercased() }
        guard domains.contains(mailDomain.lowercased()) else {
            return (
                .fail, "the autoconfig file names \(domains.joined(separator: ", ")), not \(mailDomain)",
                .discoveryMismatch
            )
        }
        let imapPorts = xml.split(separator: "<incomingServer", omittingEmptySubsequences: false).dropFirst()
            .filter { $0.hasPrefix(" type=\"imap\"") }
            .compactMap { elements("port", in: String($0)).first.flatMap { UInt16($0) } }
        let listed = "\(mailDomain), IMAP on \(imapPorts.map(String.init).joined(separator: ", "))"
        guard frontPort == 993 || imapPorts.contains(frontPort) else {
            return (
                .warn, "\(listed): not the front's \(frontPort), so clients behind a firewall do not find it",
                .discoveryMismatch
            )
        }
        return (.pass, "\(autoconfigPath) names \(listed)", nil)
    }

    static func resolvesHere(_ name: String) -> Bool {
        let local = localAddresses()
        let addresses = (try? Endpoint.resolve(name, port: 1, datagram: false)) ?? []
        return addresses.contains { local.contains($0.host) }
    }

    /// The texts of `<name>...</name>` in `xml`, in order.
    private static func elements(_ name: String, in xml: String) -> [String] {
        xml.split(separator: "<\(name)>", omittingEmptySubsequences: false).dropFirst().compactMap { rest in
            rest.firstRange(of: "</\(name)>").map { String(rest[..<$0.lowerBound]) }
        }
    }

    /// Whether the invite link (`dcaccount:https://host[:port]/new`) leads to the front that was tested.
    /// A link to another name than the one tested passes when that name resolves to this machine.
    static func inviteVerdict(
        _ link: String?, host: String, port: UInt16, leadsHere: (String) -> Bool = FrontProbe.resolvesHere
    ) -> (DoctorStep.Verdict, String, Cause?) {
        guard let link else { return (.fail, "no invite link", .discoveryMismatch) }
        let prefix = "dcaccount:https://"
        guard link.hasPrefix(prefix), let slash = link.dropFirst(prefix.count).firstIndex(of: "/") else {
            return (.fail, "the invite link \(link) is not dcaccount:https://…/new", .protocolError)
        }
        let authority = link[link.index(link.startIndex, offsetBy: prefix.count)..<slash]
        var linkHost = String(authority)
        var linkPort: UInt16 = 443
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            linkHost = String(authority[..<colon])
            guard let parsed = UInt16(authority[authority.index(after: colon)...]) else {
                return (.fail, "the invite link \(link) has a bad port", .protocolError)
            }
            linkPort = parsed
        }
        linkHost = String(linkHost.drop { $0 == "[" }.prefix { $0 != "]" })
        guard link[slash...] == "/new" else {
            return (.fail, "the invite link \(link) does not end in /new", .protocolError)
        }
        guard linkPort == port else {
            return (
                .fail, "`chatmailctl invite` gives \(link), but the front listens on port \(port)", .discoveryMismatch
            )
        }
        if linkHost.lowercased() != host.lowercased() {
            guard leadsHere(linkHost) else {
                return (
                    .fail, "`chatmailctl invite` gives \(link), which does not lead to this server (tested \(host))",
                    .wrongHost
                )
            }
            return (.pass, "`chatmailctl invite` gives \(link), which leads to this server", nil)
        }
        return (.pass, "`chatmailctl invite` gives \(link), this front", nil)
    }
}
