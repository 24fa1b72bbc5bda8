import Testing

@testable import IMAPCore

@Suite struct MailboxPatternTests {
    /// The backtracking definition (exponential in the wildcards): the reference on short inputs.
    static func reference(_ name: ArraySlice<UInt8>, _ pattern: ArraySlice<UInt8>) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        let rest = pattern.dropFirst()
        if first == UInt8(ascii: "*") || first == UInt8(ascii: "%") {
            for split in name.startIndex...name.endIndex {
                if first == UInt8(ascii: "%") && name[name.startIndex..<split].contains(UInt8(ascii: "/")) {
                    return false
                }
                if reference(name[split...], rest) { return true }
            }
            return false
        }
        guard let head = name.first else { return false }
        return MailboxPattern.equal(head, first) && reference(name.dropFirst(), rest)
    }

    @Test func examples() {
        let cases: [(String, String, Bool)] = [
            ("*", "INBOX", true), ("%", "INBOX", true), ("%", "a/b", false), ("*", "a/b", true),
            ("a/%", "a/b", true), ("a/%", "a/b/c", false), ("a/*", "a/b/c", true), ("inbox", "INBOX", true),
            ("%/%", "a/b", true), ("%b", "a/b", false), ("*b", "a/b", true), ("", "", true), ("", "a", false),
            ("a%*%c", "a/b/c", true), ("a%%%c", "a/b/c", false), ("%*%a", "INBOX", false), ("INBOX*", "INBOX", true),
        ]
        for (pattern, name, expected) in cases {
            #expect(MailboxPattern(pattern).matches(name) == expected, "\(pattern) vs \(name)")
        }
    }

    @Test func agreesWithTheBacktrackingDefinition() {
        var rng = SystemRandomNumberGenerator()
        let patternBytes = Array("ab/%*".utf8)
        let nameBytes = Array("abB/".utf8)
        for _ in 0..<20000 {
            let pattern = (0..<Int.random(in: 0...7, using: &rng)).map { _ in patternBytes.randomElement(using: &rng)! }
            let name = (0..<Int.random(in: 0...7, using: &rng)).map { _ in nameBytes.randomElement(using: &rng)! }
            let expected = Self.reference(name[...], pattern[...])
            #expect(
                MailboxPattern(pattern).matches(name) == expected,
                "\(String(decoding: pattern, as: UTF8.self)) vs \(String(decoding: name, as: UTF8.self))")
        }
    }

    /// Issue 12: `%*` × 1000 + `a` took hours with backtracking (64 `*` took 89 s); now the
    /// wildcards collapse into one and matching is a pass per pattern element.
    @Test func pathologicalPatternsAreCheap() {
        let wildcards = String(repeating: "%*", count: 1000) + "a"
        #expect(MailboxPattern(wildcards).elements.count == 2)
        #expect(!MailboxPattern(wildcards).matches("INBOX"))
        #expect(MailboxPattern(wildcards).matches(String(repeating: "x/", count: 100) + "a"))
        // Wildcards that cannot collapse (separated by literals) stay polynomial too.
        let separated = String(repeating: "%x*", count: 300) + "a"
        let name = String(repeating: "x", count: 600)
        #expect(!MailboxPattern(separated).matches(name))
        #expect(MailboxPattern(separated).matches(name + "a"))
    }
}
