/// What a step's body returns when it worked: a value for later steps and the line to show.
struct Outcome<Value> {
    var value: Value
    var detail: String
    var verdict: DoctorStep.Verdict = .pass
    var cause: Cause?
}

/// Runs the steps of one service, each with its own deadline, and records one `DoctorStep` per step.
final class StepLog {
    let service: String
    var steps: [DoctorStep] = []
    /// Maps a failure to the cause to report (the default: `cause(of:host:)` for the service's host).
    var classify: (_ step: String, _ error: NetError) -> Cause

    init(service: String, host: String) {
        self.service = service
        classify = { _, error in StepLog.cause(of: error, host: host) }
    }

    /// The error's own cause, except that a host that does not answer or refuses, and resolves to none of
    /// this machine's addresses, is probably the wrong host (clients are sent elsewhere).
    static func cause(of error: NetError, host: String, local: Set<String> = localAddresses()) -> Cause {
        guard [.noAnswer, .portClosed, .wrongHost].contains(error.cause),
            let addresses = try? Endpoint.resolve(host, port: 1, datagram: true),
            !addresses.contains(where: { local.contains($0.host) })
        else { return error.cause }
        return .wrongHost
    }

    /// Runs `body` with a deadline of `timeout`; records pass/warn with its detail, or fail with the error
    /// and its cause. Returns the body's value, or nil when it failed.
    @discardableResult
    func run<Value>(_ step: String, timeout: Duration, _ body: (Deadline) throws(NetError) -> Outcome<Value>)
        -> Value?
    {
        let start = ContinuousClock.now
        do {
            let outcome = try body(Deadline(in: timeout))
            record(step, outcome.verdict, outcome.detail, outcome.cause, since: start)
            return outcome.value
        } catch {
            record(step, .fail, error.description, classify(step, error), since: start)
            return nil
        }
    }

    func fail(_ step: String, _ detail: String, cause: Cause) {
        steps.append(DoctorStep(service: service, step: step, verdict: .fail, detail: detail, cause: cause))
    }

    func skip(_ step: String, _ detail: String) {
        steps.append(DoctorStep(service: service, step: step, verdict: .skip, detail: detail, cause: .dependency))
    }

    func record(
        _ step: String, _ verdict: DoctorStep.Verdict, _ detail: String, _ cause: Cause?,
        since start: ContinuousClock.Instant
    ) {
        steps.append(
            DoctorStep(
                service: service, step: step, verdict: verdict, detail: detail, cause: cause,
                rttMilliseconds: milliseconds(since: start)))
    }
}

func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}
