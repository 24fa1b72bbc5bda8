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
