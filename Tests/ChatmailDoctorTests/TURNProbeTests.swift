import ChatmailConfig
import ChatmailControl
import Logging
import NIOPosix
import TURNServer
import Testing

@testable import ChatmailDoctor

#if canImport(Glibc)
    import Glibc
#endif

/// The TURN probe against ports where nothing listens: each step names the cause.
@Suite struct TURNProbeTests {
    /// A loopback port that nothing listens on (TCP or UDP) right now.
    private func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test func closedPortsAreReportedAsClosed() {
        let port = freePort()
        let steps = TURNProbe(host: "127.0.0.1", port: port, tlsPort: nil, credential: nil, timeout: .seconds(2)).run()
        let byName = Dictionary(uniqueKeysWithValues: steps.map { ($0.step, $0) })
        #expect(byName["binding udp"]?.verdict == .fail)
        #expect(byName["binding udp"]?.cause == .portClosed)
        #expect(byName["binding tcp"]?.cause == .portClosed)
        #expect(byName["credential"]?.cause == .notRunning)
    }

    @Test func anAddressOfNoInterfaceIsAWrongHost() {
        // TEST-NET-1 is on no interface here; UDP gets no answer, which with a foreign address means the
        // configured host is probably wrong.
        let steps = TURNProbe(
            host: "192.0.2.1", port: 3478, tlsPort: nil, credential: nil, timeout: .milliseconds(300)
        ).run()
        #expect(steps.first?.step == "binding udp")
        #expect(steps.first?.cause == .wrongHost)
    }
}

/// The probe against a real TURN server in-process that knows one secret: a credential made with
/// another (as when IMAP hands out one TURN does not accept) fails Allocate, naming the cause and source.
@Suite struct TURNProbeCredentialTests {
    @Test func aCredentialTURNRefusesIsNamedWithWhereItCameFrom() async throws {
        var configuration = try Configuration.parse(
            """
            [turn]
            listen = "127.0.0.1:3478"
            host = "127.0.0.1"
            realm = "test"
            relay_ports = "40000-40999"
            [iroh]
            enabled = false
            """, path: "/tmp/doctor-turn-tests.conf")
        configuration.turn.listen.port = 0
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await TURNServer.start(
            settings: try TURNSettings(configuration: configuration), secrets: ["turn-secret"], tls: nil,
            group: group, logger: Logger(label: "test"))
        let port = UInt16(server.udpAddresses[0].port!)
        func probe(secret: String, source: TURNProbe.CredentialSource) -> [String: DoctorStep] {
            let credential = TURNCredential(secret: secret, now: Int(time(nil)), ttl: 600)
            let value = TURNDiscoveryValue(
                host: "127.0.0.1", port: port, username: credential.username, password: credential.password)
            let steps = TURNProbe(
                host: "127.0.0.1", port: port, tlsPort: nil, credential: value, source: source,
                timeout: .seconds(2)
            ).run()
            return Dictionary(steps.map { ($0.step, $0) }) { first, _ in first }
        }

        let refused = probe(secret: "imap-secret", source: .imap)
        #expect(refused["credential"]?.verdict == .pass)
        #expect(refused["credential"]?.detail.contains("as IMAP hands it out") == true)
        #expect(refused["allocate udp"]?.verdict == .fail)
        #expect(refused["allocate udp"]?.cause == .authentication)
        #expect(refused["allocate udp"]?.detail.contains("the credential IMAP hands out") == true)
        #expect(refused["relay range"]?.verdict == .skip)

        let accepted = probe(secret: "turn-secret", source: .imap)
        #expect(accepted["allocate udp"]?.verdict == .pass)

        let minted = probe(secret: "turn-secret", source: .supervisor(imapEnabled: true))
        #expect(minted["credential"]?.verdict == .warn, "IMAP is on but handed out none")
        await server.shutdown()
        try await group.shutdownGracefully()
    }
}

@Suite struct CauseTests {
    @Test func silenceFromAnAddressOfThisMachineIsNoAnswerElsewhereAWrongHost() {
        let local: Set<String> = ["127.0.0.1", "10.77.0.1"]
        #expect(StepLog.cause(of: .timeout("x"), host: "10.77.0.1", local: local) == .noAnswer)
        #expect(StepLog.cause(of: .refused("x"), host: "10.77.0.1", local: local) == .portClosed)
        #expect(StepLog.cause(of: .timeout("x"), host: "192.0.2.7", local: local) == .wrongHost)
        #expect(StepLog.cause(of: .refused("x"), host: "192.0.2.7", local: local) == .wrongHost)
        // Other failures keep their own cause wherever the host is.
        #expect(StepLog.cause(of: .tls("x"), host: "192.0.2.7", local: local) == .tlsHandshake)
        #expect(StepLog.cause(of: .unresolvable("x"), host: "no.such.name.invalid", local: local) == .unresolvable)
    }
}
