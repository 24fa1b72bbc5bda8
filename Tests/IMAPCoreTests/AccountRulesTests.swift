import Testing

@testable import IMAPCore

@Suite struct AccountRulesTests {
    let rules = AccountRules(domain: "Example.org")

    @Test func localpartsAreDotAtoms() {
        #expect(rules.normalizedAddress("Ivan.0001@example.ORG") == "ivan.0001@example.org")
        #expect(rules.normalizedAddress("a_b-c.d.e@example.org") == "a_b-c.d.e@example.org")
        // Issue 12: these were accepted and made accounts nobody can write to.
        for refused in [
            "ivan0001.@example.org", "ivan..001@example.org", ".ivan0001@example.org", "@example.org",
            ".@example.org", "ivan 0001@example.org", "ivan+0001@example.org", "ivan0001@example.org.",
            "ivan0001@other.org", "ivan0001", "ivän0001@example.org",
        ] {
            #expect(rules.normalizedAddress(refused) == nil, "\(refused)")
        }
    }

    @Test func creationNeedsLengthAndPassword() {
        #expect(rules.allowsCreation(address: "abcdefghi@example.org", password: "123456789"))
        #expect(!rules.allowsCreation(address: "abcdefgh@example.org", password: "123456789"))
        #expect(!rules.allowsCreation(address: "abcdefghi@example.org", password: "12345678"))
        #expect(!rules.allowsCreation(address: "ivan0001.@example.org", password: "123456789"))
        #expect(!rules.allowsCreation(address: "ivan..001@example.org", password: "123456789"))
    }
}
