import Testing

@testable import ShadowsocksCore

@Suite("Half-open budget shared by source")
struct HalfOpenBudgetTests {
    static func address(_ text: String) -> IPAddress { IPAddress(parsing: text)! }

    @Test("networks are the /24 of IPv4 (mapped forms too) and the /64 of IPv6")
    func networks() {
        #expect(HalfOpenBudget.network(of: Self.address("192.0.2.77")) == Self.address("192.0.2.0"))
        #expect(HalfOpenBudget.network(of: Self.address("::ffff:192.0.2.77")) == Self.address("192.0.2.0"))
        #expect(HalfOpenBudget.network(of: Self.address("2001:db8:1:2:3:4:5:6")) == Self.address("2001:db8:1:2::"))
    }

    @Test("with the budget empty a source gets its cap; as it fills, the caps shrink with the free share")
    func shares() {
        var budget = HalfOpenBudget(total: 100, perAddress: 10, perNetwork: 20)
        let a = Self.address("192.0.2.1")
        var fromA = 0
        while budget.admit(a) { fromA += 1 }
        #expect(fromA == 10)
        // Other addresses of the same /24 share its network cap, which shrinks as the budget fills.
        var sameNetwork = 0
        for host in 2...20 where budget.admit(Self.address("192.0.2.\(host)")) { sameNetwork += 1 }
        #expect(sameNetwork < 10)
        #expect(budget.held(by: a).network == 10 + sameNetwork)
        let share = budget.held(by: a).network
        #expect(share <= (20 * (100 - share) + 99) / 100 + 1)
        // A newcomer from elsewhere still gets in.
        #expect(admitted(&budget, Self.address("198.51.100.1")))
    }

    @Test("many busy sources leave places free, and a source holding none always gets one while any is free")
    func fairness() {
        var budget = HalfOpenBudget(total: 1024, perAddress: 32, perNetwork: 128)
        var progress = true
        while progress {
            progress = false
            for network in 0..<41 where budget.admit(Self.address("10.0.\(network).1")) { progress = true }
        }
        #expect(budget.used < 700)
        var newcomers = 0
        for host in 1...20 where budget.admit(Self.address("198.51.\(host).1")) { newcomers += 1 }
        #expect(newcomers == 20)
        // Nearly full: a fresh source still gets a place, a source holding one does not.
        var full = HalfOpenBudget(total: 10, perAddress: 5, perNetwork: 5)
        for host in 1...9 { #expect(admitted(&full, Self.address("203.0.\(host).1"))) }
        #expect(!admitted(&full, Self.address("203.0.1.1")))
        #expect(admitted(&full, Self.address("203.0.100.1")))
        #expect(!admitted(&full, Self.address("203.0.101.1")))  // all taken
    }

    @Test("releasing gives the place back, and unknown releases change nothing")
    func release() {
        var budget = HalfOpenBudget(total: 2, perAddress: 2, perNetwork: 2)
        let a = Self.address("2001:db8::1")
        #expect(admitted(&budget, a))
        #expect(admitted(&budget, Self.address("2001:db9::1")))
        #expect(!admitted(&budget, Self.address("2001:dba::1")))
        budget.release(a)
        budget.release(Self.address("192.0.2.1"))
        #expect(budget.used == 1 && budget.held(by: a) == (0, 0))
        #expect(admitted(&budget, Self.address("2001:dba::1")))
    }
}

/// `budget.admit(address)`, outside `#expect` (which cannot call a mutating method).
private func admitted(_ budget: inout HalfOpenBudget, _ address: IPAddress) -> Bool {
    budget.admit(address)
}
