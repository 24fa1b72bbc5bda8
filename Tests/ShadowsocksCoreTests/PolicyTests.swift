import ChatmailTestSupport
import NIOCore
import Testing

@testable import ShadowsocksCore

@Suite("Destination policy, addresses and salt history")
struct PolicyTests {
    static let upstreams: [UInt16: DestinationPolicy.Upstream] = [
        993: .init(host: "127.0.0.1", port: 1993), 465: .init(host: "127.0.0.1", port: 465),
        443: .init(host: "::1", port: 443),
    ]
    static let policy = DestinationPolicy(
        names: ["Chat.Example.org.", "localhost", "mail.localhost", "0.0.0.0", "198.51.100.7"],
        addresses: [IPAddress(parsing: "203.0.113.5")!, IPAddress(parsing: "2001:db8::5")!, IPAddress(parsing: "::")!],
        upstreams: upstreams)

    static func name(_ text: String, _ port: UInt16) -> TargetAddress {
        TargetAddress(host: .name(Array(text.utf8)), port: port)
    }

    static func ip(_ text: String, _ port: UInt16) -> TargetAddress {
        let address = IPAddress(parsing: text)!
        return TargetAddress(host: address.isIPv4 ? .ipv4(address) : .ipv6(address), port: port)
    }

    @Test("This server's names and addresses on allowed ports go to the configured upstream")
    func allowed() throws {
        #expect(Self.policy.names == ["chat.example.org"])
        #expect(
            try Self.policy.decide(Self.name("chat.example.org", 993)).get() == .init(host: "127.0.0.1", port: 1993))
        #expect(try Self.policy.decide(Self.name("CHAT.example.ORG.", 465)).get().port == 465)
        #expect(try Self.policy.decide(Self.ip("203.0.113.5", 443)).get().host == "::1")
        #expect(throws: Never.self) { try Self.policy.decide(Self.ip("::ffff:203.0.113.5", 993)).get() }
        #expect(throws: Never.self) { try Self.policy.decide(Self.ip("2001:db8::5", 993)).get() }
        // IP literals sent as names (Delta Chat sends everything as ATYP 3), and IPs given as names.
        #expect(throws: Never.self) { try Self.policy.decide(Self.name("203.0.113.5", 993)).get() }
        #expect(throws: Never.self) { try Self.policy.decide(Self.name("[2001:db8:0::5]", 993)).get() }
        #expect(throws: Never.self) { try Self.policy.decide(Self.name("198.51.100.7", 993)).get() }
    }

    @Test(
        "Everything else is refused",
        arguments: [
            (name("chat.example.org", 25), DestinationPolicy.Refusal.port),
            (name("chat.example.org", 10025), .port), (ip("127.0.0.1", 25), .port), (ip("127.0.0.1", 993), .host),
            (name("localhost", 993), .host), (name("LocalHost.", 993), .host), (name("mail.localhost", 993), .host),
            (name("127.0.0.1", 993), .host), (ip("::ffff:127.0.0.1", 993), .host), (ip("::1", 993), .host),
            (ip("0.0.0.0", 993), .host), (ip("::", 993), .host), (name("0.0.0.0", 993), .host),
            (name("example.org", 993), .host), (name("chat.example.org.evil", 993), .host),
            (name("2130706433", 993), .host), (name("127.1", 993), .host), (ip("203.0.113.6", 993), .host),
            (name("chat.example.org\u{00}", 993), .host),
        ])
    func refused(target: TargetAddress, refusal: DestinationPolicy.Refusal) {
        #expect(throws: refusal) { try Self.policy.decide(target).get() }
    }

    @Test("IP literals: strict IPv4, IPv6 text forms, normalisation")
    func addresses() {
        #expect(IPAddress(parsing: "1.2.3.4")?.bytes == [1, 2, 3, 4])
        for bad in [
            "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1.2.3.4 ", "0x7f.0.0.1", "::1::", "1:2:3:4:5:6:7:8:9",
            "g::1", "",
        ] {
            #expect(IPAddress(parsing: bad) == nil, "\(bad)")
        }
        #expect(IPAddress(parsing: "::1")?.bytes == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPAddress(parsing: "[::ffff:10.0.0.1]")?.normalized == IPAddress(parsing: "10.0.0.1"))
        #expect(IPAddress(parsing: "::10.0.0.1")?.normalized == IPAddress(parsing: "10.0.0.1"))
        #expect(IPAddress(parsing: "::1")?.normalized == IPAddress(parsing: "::1"))
        #expect(IPAddress(parsing: "1:2:3:4:5:6:7:8")?.description == "1:2:3:4:5:6:7:8")
        #expect(IPAddress(parsing: "::ffff:0.0.0.0")?.isUnspecified == true)
    }

    @Test("Target addresses: the three forms, partial input, invalid input")
    func targets() {
        #expect(TargetAddress.parse([1, 127, 0, 0, 1, 0, 25]) == .parsed(Self.ip("127.0.0.1", 25), length: 7))
        #expect(TargetAddress.parse([1, 127, 0, 0, 1, 0]) == .needMore)
        #expect(TargetAddress.parse([3, 0, 0, 25]) == .invalid)
        #expect(TargetAddress.parse([3, 2, 0x61, 0, 0, 25]) == .invalid)
        #expect(TargetAddress.parse([3, 3, 0x61, 0x62]) == .needMore)
        #expect(TargetAddress.parse([0x13, 127, 0, 0, 1, 0, 25]) == .invalid)  // libev would mask this to 3
        #expect(TargetAddress.parse([5]) == .invalid)
        #expect(TargetAddress.parse([]) == .needMore)
        let v6 = Self.ip("2001:db8::5", 443)
        #expect(TargetAddress.parse(v6.encoded + [9, 9]) == .parsed(v6, length: 19))
    }

    @Test("Fuzz: target parsing is consistent with encoding")
    func fuzzTargets() {
        var random = SeededGenerator(seed: 1)
        for _ in 0..<5000 {
            let input = random.bytes(Int.random(in: 0...40, using: &random))
            switch TargetAddress.parse(input) {
            case .parsed(let target, let length):
                #expect(length <= input.count)
                #expect(target.encoded == Array(input.prefix(length)))
            case .needMore:
                #expect(input.count < TargetAddress.maximumLength)
            case .invalid:
                #expect(!input.isEmpty)
            }
        }
    }

    @Test("Salt history: replays refused, bounded to two generations")
    func saltHistory() {
        var history = SaltHistory(capacity: 3)
        let salts = (0..<10).map { run(UInt8($0), count: 32) }
        var inserted = history.insert(salts[0])
        #expect(inserted)
        inserted = history.insert(salts[0])
        #expect(!inserted)
        inserted = history.insert(run(0, count: 16))  // same prefix, other length
        #expect(inserted)
        inserted = history.insert(salts[1])
        #expect(inserted)
        inserted = history.insert(salts[2])  // rotates: 0, 0/16, 1 become the previous generation
        #expect(inserted)
        inserted = history.insert(salts[1])
        #expect(!inserted)
        for salt in salts[3...] {
            inserted = history.insert(salt)
            #expect(inserted)
        }
        #expect(!history.contains(salts[0]))
        #expect(history.contains(salts[9]))
    }
}
