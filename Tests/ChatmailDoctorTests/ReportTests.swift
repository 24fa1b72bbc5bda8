import Testing

@testable import ChatmailDoctor

@Suite struct ReportTests {
    @Test func exitCodeIsZeroOnlyWithoutFailures() {
        var report = DoctorReport(steps: [
            DoctorStep(service: "turn", step: "binding udp", verdict: .pass, detail: "ok"),
            DoctorStep(service: "imap", step: "tls", verdict: .warn, detail: "self-signed", cause: .tlsCertificate),
            DoctorStep(service: "turn", step: "relay round trip", verdict: .skip, detail: "", cause: .dependency),
        ])
        #expect(report.exitCode == 0)
        #expect(report.summary == "all 3 steps passed (1 warning(s))")
        report.steps.append(
            DoctorStep(service: "iroh", step: "generate_204", verdict: .fail, detail: "refused", cause: .portClosed))
        #expect(report.exitCode == 1)
        #expect(report.summary == "1 of 4 steps failed: iroh generate_204")
    }

    @Test func aLineNamesStepVerdictAndCause() {
        let step = DoctorStep(
            service: "turn", step: "allocate udp", verdict: .fail, detail: "no answer from 10.77.0.1:3478 in time",
            cause: .noAnswer, rttMilliseconds: 2000)
        #expect(step.line.hasPrefix("FAIL turn         allocate udp           no answer from 10.77.0.1:3478 in time"))
        #expect(step.line.contains("[no answer: a firewall drops the packets"))
        #expect(step.line.hasSuffix("(2000.0 ms)"))
    }

    @Test func networkErrorsMapToCauses() {
        #expect(NetError.refused("x").cause == .portClosed)
        #expect(NetError.timeout("x").cause == .noAnswer)
        #expect(NetError.unresolvable("x").cause == .unresolvable)
        #expect(NetError.tls("x").cause == .tlsHandshake)
        #expect(NetError.unreachable("x", "No route to host").cause == .wrongHost)
    }

    @Test func certificateVerdicts() {
        let good = CertificateCheck(
            names: ["chat.example.org"], matchesName: true, daysLeft: 80, verifyResult: 0, verifyText: "ok")
        #expect(good.verdict(name: "chat.example.org").0 == .pass)
        var selfSigned = good
        selfSigned.verifyResult = 18
        #expect(selfSigned.verdict(name: "chat.example.org").0 == .warn)
        var otherName = selfSigned
        otherName.matchesName = false
        let (verdict, detail, cause) = otherName.verdict(name: "mail.example.net")
        #expect(verdict == .fail && cause == .tlsNameMismatch)
        #expect(detail == "certificate is for chat.example.org, not mail.example.net")
        var expired = good
        expired.daysLeft = -3
        #expect(expired.verdict(name: "chat.example.org").2 == .tlsCertificate)
        #expect(expired.verdict(name: "chat.example.org").0 == .fail)
        var soon = good
        soon.daysLeft = 5
        #expect(soon.verdict(name: "chat.example.org").0 == .warn)
        var untrusted = good
        untrusted.verifyResult = 20
        #expect(untrusted.verdict(name: "chat.example.org").0 == .fail)
    }

    @Test func turnDiscoveryValueParses() {
        let value = TURNDiscoveryValue("chat.example.org:3478:1796733004:abc+/=")
        #expect(
            value
                == TURNDiscoveryValue(host: "chat.example.org", port: 3478, username: "1796733004", password: "abc+/="))
        #expect(TURNDiscoveryValue("2001:db8::1:3478:1:pw")?.host == "2001:db8::1")
        #expect(TURNDiscoveryValue("nonsense") == nil)
        #expect(TURNDiscoveryValue("host:notaport:1:pw") == nil)
    }
}
