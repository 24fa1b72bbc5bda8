import ArgumentParser
import ChatmailConfig
import ChatmailControl
import ChatmailCrypto
import ChatmailDoctor
import ChatmailState
import Foundation
import IMAPStore
import ShadowsocksCore
import ShadowsocksServer

/// `chatmailctl doctor`: tests every enabled service from the outside, at the names and addresses clients are
/// told, one line per step.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Test each enabled service as a client from outside would; exit 0 when all pass.",
        discussion: """
            Run on the server. TURN: STUN over UDP and TCP, Allocate over UDP, TCP and TLS with the credential \
            IMAP hands out to the throwaway account (one the supervisor mints when IMAP is off or gives none), \
            and a relay-only round trip between two allocations. iroh: /generate_204 and a packet through the \
            relay; its HTTPS front ([iroh] tls_listen) at the mail domain (or --imap-host): the IMAP greeting over \
            ALPN imap, the SMTP banner over ALPN smtp (when smtp_upstream is set), /generate_204 and the \
            autoconfig file over http/1.1, and the invite link pointing there (POST /new is not tried). \
            Shadowsocks: IMAP's TLS greeting through the ss:// link. IMAP: TLS (certificate name and expiry), \
            LOGIN of a throwaway account (deleted afterwards), and the METADATA a client gets, compared with \
            what was tested.
            """)
    @Option(name: .long, help: "The configuration file.") var config = "/etc/chatmail/supervisor.conf"
    @Flag(name: .long, help: "Print JSON: {\"passed\": ..., \"steps\": [...]}.") var json = false
    @Option(name: .long, help: "Seconds each step may take.") var timeout: Double = 3
    @Option(name: .long, help: "The name clients reach IMAP at (default: [imap] mail_domain).") var imapHost: String?

    func run() async throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: config)
        } catch {
            fail("\n\(error)")
        }
        let stepTimeout = Duration.milliseconds(Int64(timeout * 1000))
        var steps: [DoctorStep] = []
        let supervisor = await Self.askSupervisor(configuration)
        if let failure = supervisor.failure {
            steps.append(
                DoctorStep(
                    service: "supervisor", step: "control socket", verdict: .fail, detail: failure, cause: .notRunning))
        }
        let enabled = Set(
            supervisor.status?.sidecars.filter(\.enabled).map(\.name)
                ?? configuration.enabledChildren(
                    overrides: (try? StateReader(directory: configuration.supervisor.stateDir).savedToggles()) ?? [:]))
        let discovery = supervisor.discovery

        // IMAP first (its steps are shown last): TURN allocates with the credential IMAP hands out, as a
        // client does, so that a credential lost or spoilt between the supervisor and IMAP shows.
        let imap = enabled.contains("imap") ? imapSteps(configuration, enabled: enabled, timeout: stepTimeout) : nil

        if enabled.contains("turn") {
            let turn = configuration.turn
            let fromIMAP = imap?.discovery[IMAPProbe.turnEntry].flatMap(TURNDiscoveryValue.init)
            steps += TURNProbe(
                host: turn.host, port: turn.port, tlsPort: configuration.turnServesTLS ? turn.tlsPort : nil,
                credential: fromIMAP ?? discovery?.turn.flatMap(TURNDiscoveryValue.init),
                source: fromIMAP != nil ? .imap : .supervisor(imapEnabled: imap != nil), timeout: stepTimeout
            ).run()
        }

        if enabled.contains("iroh") {
            if let url = URLComponents(string: configuration.iroh.url), let host = url.host, !host.isEmpty {
                let tls = url.scheme == "https"
                steps += IrohProbe(
                    host: host, port: url.port.flatMap { UInt16(exactly: $0) } ?? (tls ? 443 : 80), tls: tls,
                    timeout: stepTimeout
                ).run()
            } else {
                steps.append(
                    DoctorStep(
                        service: "iroh", step: "url", verdict: .fail,
                        detail: "[iroh] url \"\(configuration.iroh.url)\" has no host", cause: .wrongHost))
            }
        }

        if enabled.contains("iroh"), let front = configuration.iroh.tlsListen {
            steps += FrontProbe(
                host: imapHost ?? configuration.imap.mailDomain, port: front.port,
                mailDomain: configuration.imap.mailDomain, smtpRouted: configuration.iroh.smtpUpstream != nil,
                inviteLink: configuration.inviteLink, timeout: stepTimeout
            ).run()
        }

        if enabled.contains("shadowsocks") {
            steps += await shadowsocksSteps(configuration, timeout: stepTimeout)
        }

        steps += imap?.steps ?? []

        let report = DoctorReport(steps: steps)
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            struct Output: Encodable {
                var passed: Bool
                var summary: String
                var steps: [DoctorStep]
            }
            let output = Output(passed: report.passed, summary: report.summary, steps: report.steps)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            for step in report.steps { print(step.line) }
            print(report.summary)
        }
        throw ExitCode(report.exitCode)
    }

    /// LOGIN needs an account: a throwaway one is made in the store for the probe and deleted after it.
    func imapSteps(_ configuration: Configuration, enabled: Set<String>, timeout: Duration) -> (
        steps: [DoctorStep], discovery: [String: String]
    ) {
        let imap = configuration.imap
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let localpart = String((0..<max(9, imap.localpartMinLength)).map { _ in letters.randomElement()! })
        let address = "\(localpart)@\(imap.mailDomain)"
        let password = Crypto.base64URL(Crypto.randomBytes(18))
        let store: MailDatabase
        do {
            try FileManager.default.createDirectory(
                atPath: configuration.supervisor.stateDir, withIntermediateDirectories: true)
            store = try MailDatabase(path: MailDatabase.path(for: configuration), settings: MailDatabase.Settings(imap))
            guard try store.addAccount(address: address, password: password) else { throw DoctorFailure("exists") }
        } catch {
            let step = DoctorStep(
                service: "imap", step: "account", verdict: .fail,
                detail: "cannot make a throwaway account in the mail store: \(error)", cause: .protocolError)
            return ([step], [:])
        }
        defer { _ = try? store.deleteAccount(address: address) }
        let turn = configuration.turn
        let expected = IMAPProbe.Expected(
            turn: enabled.contains("turn") ? "\(turn.host):\(turn.preferTLS ? turn.tlsPort : turn.port)" : nil,
            irohRelay: enabled.contains("iroh") ? configuration.iroh.url : nil)
        return IMAPProbe(
            host: imapHost ?? imap.mailDomain, port: imap.tlsListen.port, address: address, password: password,
            expected: expected, timeout: timeout
        ).run()
    }

    /// Through the link `chatmailctl shadowsocks url` prints, to IMAP's public TLS port on this server's own
    /// name or address (the link's host).
    func shadowsocksSteps(_ configuration: Configuration, timeout: Duration) async -> [DoctorStep] {
        let section = configuration.shadowsocks
        func failure(_ step: String, _ detail: String, _ cause: Cause) -> [DoctorStep] {
            [DoctorStep(service: "shadowsocks", step: step, verdict: .fail, detail: detail, cause: cause)]
        }
        let credential: ShadowsocksCredential
        do {
            credential = try ShadowsocksSettings.credential(
                from: configuration,
                generatedKey: try await Shadowsocks.URL.generatedKey(
                    configuration, timeoutMilliseconds: Int64(timeout / .milliseconds(1))))
        } catch let error as Shadowsocks.URL.KeyError {
            return failure("key", "\(error)", .notRunning)  // the supervisor hangs, or has never made the key
        } catch {
            return failure("key", "\(error)", .protocolError)
        }
        let host = section.publicHost
        guard !host.isEmpty else {
            return failure("link", "no host for the link: set [shadowsocks] public_host", .wrongHost)
        }
        let imapPort = configuration.imap.tlsListen.port
        guard
            let port = section.upstreams[993] != nil
                ? 993 : section.upstreams.first(where: { $0.value.port == imapPort })?.key
        else {
            return failure("target", "no allowed port leads to IMAP's TLS port \(imapPort)", .protocolError)
        }
        let targetHost: TargetAddress.Host =
            if let address = IPAddress(parsing: host) {
                address.isIPv4 ? .ipv4(address) : .ipv6(address)
            } else {
                .name(Array(host.utf8))
            }
        return ShadowsocksProbe(
            link: credential.link(host: host, port: section.publicPort, tag: host), credential: credential, host: host,
            port: section.publicPort, target: TargetAddress(host: targetHost, port: port),
            imapName: imapHost ?? configuration.imap.mailDomain, timeout: timeout
        ).run()
    }

    struct DoctorFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The supervisor's status and a fresh discovery answer (a TURN credential minted now, used when IMAP
    /// hands out none).
    static func askSupervisor(_ configuration: Configuration) async -> (
        status: SupervisorStatus?, discovery: Discovery?, failure: String?
    ) {
        let path = configuration.supervisor.controlSocket
        let client: ControlClient
        do {
            client = try await ControlClient.connect(path: path)
        } catch {
            return (nil, nil, "the supervisor is not running (cannot connect to \(path): \(error))")
        }
        defer { Task { await client.close() } }
        do {
            let status = try await client.request(.status, timeout: .seconds(5))
            let discovery = try await client.request(.discovery(account: nil), timeout: .seconds(5))
            guard status.ok, discovery.ok else {
                return (nil, nil, status.error ?? discovery.error ?? "the supervisor refused")
            }
            return (status.status, discovery.discovery, nil)
        } catch {
            return (nil, nil, "no answer from the supervisor: \(error)")
        }
    }
}
