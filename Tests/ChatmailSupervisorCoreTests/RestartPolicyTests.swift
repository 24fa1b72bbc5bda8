import ChatmailSupervisorCore
import Testing

@Suite struct RestartPolicyTests {
    let policy = RestartPolicy(minimumDelay: .seconds(1), maximumDelay: .seconds(60), multiplier: 2, jitter: 0.25)

    @Test func delaysDoubleUpToTheMaximum() {
        let delays = (1...9).map { policy.delay(afterFailures: $0, randomUnit: 0).seconds }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60])
    }

    @Test(arguments: [1, 3, 7, 20])
    func jitterStaysWithinItsBounds(failures: Int) {
        let base = policy.delay(afterFailures: failures, randomUnit: 0).seconds
        for unit in stride(from: 0.0, to: 1.0, by: 0.05) {
            let delay = policy.delay(afterFailures: failures, randomUnit: unit).seconds
            #expect(delay >= base && delay < base * 1.25 + 1e-9)
        }
        #expect(policy.delay(afterFailures: failures, randomUnit: 0.999).seconds > base * 1.2)
    }
}
