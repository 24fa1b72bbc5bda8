/// What `chatmailctl doctor` found: one step per line, each with a verdict, what it saw, the likely cause
/// when it failed, and how long it took.
public struct DoctorStep: Sendable, Equatable, Codable {
    public enum Verdict: String, Sendable, Codable, Comparable {
        case pass, warn, fail, skip

        private var rank: Int {
            switch self {
            case .pass: 0
            case .skip: 1
            case .warn: 2
            case .fail: 3
            }
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    }

    /// turn, iroh, shadowsocks or imap.
    public var service: String
    /// A short name, e.g. "allocate udp".
    public var step: String
    public var verdict: Verdict
    /// What was seen (pass, warn) or what went wrong (fail, skip).
    public var detail: String
    /// The likely cause of a failure or warning, for the operator.
    public var cause: Cause?
    /// Milliseconds the step took (a round trip where there is one).
    public var rttMilliseconds: Double?

    public init(
        service: String, step: String, verdict: Verdict, detail: String, cause: Cause? = nil,
        rttMilliseconds: Double? = nil
    ) {
        self.service = service
        self.step = step
        self.verdict = verdict
        self.detail = detail
        self.cause = cause
        self.rttMilliseconds = rttMilliseconds
    }

    /// `FAIL turn  allocate udp      no answer within 2s (no answer: a firewall drops it?)  2.0 ms`
    public var line: String {
        let mark =
            switch verdict {
            case .pass: "ok  "
            case .warn: "WARN"
            case .fail: "FAIL"
            case .skip: "skip"
            }
        var text = "\(mark) \(service.padded(12)) \(step.padded(22)) \(detail)"
        if let cause { text += " [\(cause.explanation)]" }
        if let rttMilliseconds { text += String(format: " (%.1f ms)", rttMilliseconds) }
        return text
    }
}

/// The likely reason a step failed, from what the failure looked like.
public enum Cause: String, Sendable, Codable, Equatable {
    /// Connection refused or ICMP port unreachable: nothing listens there, or a firewall rejects.
    case portClosed = "port-closed"
    /// Nothing came back before the deadline: a firewall drops the packets, or the service hangs.
    case noAnswer = "no-answer"
    /// The name does not resolve.
    case unresolvable = "unresolvable"
    /// The configured host does not lead to this server.
    case wrongHost = "wrong-host"
    /// The certificate is not for the name clients use.
    case tlsNameMismatch = "tls-name-mismatch"
    /// The certificate is not trusted (self-signed, unknown issuer) or has expired.
    case tlsCertificate = "tls-certificate"
    /// The TLS handshake failed.
    case tlsHandshake = "tls-handshake"
    /// The relay allocated but packets between relayed addresses never arrived.
    case relayUnreachable = "relay-unreachable"
    /// The server refused the credential.
    case authentication = "authentication"
    /// The server answered something unexpected.
    case protocolError = "protocol-error"
    /// The service is enabled but not running or not ready.
    case notRunning = "not-running"
    /// Discovery hands clients something other than what was tested.
    case discoveryMismatch = "discovery-mismatch"
    /// An earlier step this one needs failed.
    case dependency = "dependency"

    public var explanation: String {
        switch self {
        case .portClosed: "port closed: nothing listens there, or a firewall rejects it"
        case .noAnswer: "no answer: a firewall drops the packets, or the service hangs"
        case .unresolvable: "the name does not resolve"
        case .wrongHost: "wrong host: it does not lead to this server"
        case .tlsNameMismatch: "TLS name mismatch: the certificate is for other names"
        case .tlsCertificate: "certificate not trusted by clients"
        case .tlsHandshake: "TLS handshake failed"
        case .relayUnreachable: "relay address unreachable: are the relay ports open (udp)?"
        case .authentication: "credential refused"
        case .protocolError: "unexpected answer"
        case .notRunning: "enabled but not running"
        case .discoveryMismatch: "clients are told something else"
        case .dependency: "an earlier step failed"
        }
    }
}

/// All steps of one run.
public struct DoctorReport: Sendable, Equatable, Codable {
    public var steps: [DoctorStep]

    public init(steps: [DoctorStep] = []) { self.steps = steps }

    /// Passed when no step failed (warnings and skips pass).
    public var passed: Bool { !steps.contains { $0.verdict == .fail } }

    /// 0 when every enabled service passed, 1 otherwise.
    public var exitCode: Int32 { passed ? 0 : 1 }

    /// The failed steps' `service: step`, for the summary line.
    public var failures: [String] { steps.filter { $0.verdict == .fail }.map { "\($0.service) \($0.step)" } }

    public var summary: String {
        let warnings = steps.filter { $0.verdict == .warn }.count
        let failed = failures
        if failed.isEmpty {
            return "all \(steps.count) steps passed" + (warnings > 0 ? " (\(warnings) warning(s))" : "")
        }
        return "\(failed.count) of \(steps.count) steps failed: \(failed.joined(separator: ", "))"
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
