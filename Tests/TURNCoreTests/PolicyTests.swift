import ChatmailControl
import Testing

@testable import TURNCore

@Suite("Nonces, REST credentials, peer policy")
struct PolicyTests {
    let client = STUNAddress("198.51.100.7:40000")!

    @Test("stateless nonces: valid for the issuing client until their lifetime, refused elsewhere or altered")
    func nonces() {
        let authority = NonceAuthority(key: Array(repeating: 7, count: 32), lifetime: 600)
        let nonce = authority.issue(for: client, now: 1000)
        #expect(nonce.utf8.count == 24)
        #expect(authority.check(nonce, for: client, now: 1000) == .valid)
        #expect(authority.check(nonce, for: client, now: 1599) == .valid)
        #expect(authority.check(nonce, for: client, now: 1600) == .stale)
        #expect(authority.check(nonce, for: STUNAddress("198.51.100.7:40001")!, now: 1000) == .invalid)
        #expect(NonceAuthority(key: [1], lifetime: 600).check(nonce, for: client, now: 1000) == .invalid)
        var altered = Array(nonce.utf8)
        altered[3] = altered[3] == 0x30 ? 0x31 : 0x30
        #expect(authority.check(String(decoding: altered, as: UTF8.self), for: client, now: 1000) == .invalid)
        #expect(authority.check("short", for: client, now: 1000) == .invalid)
        #expect(authority.check(String(repeating: "z", count: 24), for: client, now: 1000) == .invalid)
    }

    @Test("REST credentials: same password as the control library, expiry, expiry:name, rotation")
    func restCredentials() throws {
        let credential = TURNCredential(secret: "north", username: "1700003600")
        #expect(RESTAuthenticator.password(secret: "north", username: "1700003600") == credential.password)
        #expect(RESTAuthenticator.expiry(of: "1700003600") == 1_700_003_600)
        #expect(RESTAuthenticator.expiry(of: "1700003600:alice") == 1_700_003_600)
        for bad in ["", ":alice", "abc", "-5", "12a", "99999999999999999999"] {
            #expect(RESTAuthenticator.expiry(of: bad) == nil, "\(bad)")
        }
        let auth = RESTAuthenticator(secrets: ["new", "old"], realm: "example.org", maximumValidity: 86400 * 7)
        let keys = try auth.keys(for: "1700003600", now: 1_700_000_000).get()
        let oldPassword = RESTAuthenticator.password(secret: "old", username: "1700003600")
        #expect(
            keys[1] == STUNCredentials.longTermKey(username: "1700003600", realm: "example.org", password: oldPassword))
        #expect(keys.count == 2 && keys[0] != keys[1])
        #expect(auth.keys(for: "1700003600", now: 1_700_003_600) == .failure(.expired))
        #expect(auth.keys(for: "1900000000", now: 1_700_000_000) == .failure(.tooFarInFuture))
        #expect(auth.keys(for: "bob", now: 0) == .failure(.malformedUsername))
        #expect(RESTAuthenticator(secrets: [], realm: "r").keys(for: "5", now: 0) == .failure(.noSecret))
    }

    @Test("IP ranges parse and match")
    func ranges() {
        #expect(IPRange("10.0.0.0/8")!.contains(STUNAddress("10.255.0.1:1")!))
        #expect(!IPRange("10.0.0.0/8")!.contains(STUNAddress("11.0.0.1:1")!))
        #expect(IPRange("0.0.0.0/0")!.contains(STUNAddress("1.2.3.4:1")!))
        #expect(!IPRange("0.0.0.0/0")!.contains(STUNAddress("[::1]:1")!))
        #expect(IPRange("fe80::/10")!.contains(STUNAddress("[febf::1]:1")!))
        #expect(!IPRange("fe80::/10")!.contains(STUNAddress("[fec0::1]:1")!))
        #expect(IPRange("2001:db8::/96")!.contains(STUNAddress("[2001:db8::1:2]:1")!))
        #expect(IPRange("192.0.2.1")!.prefixLength == 32)
        #expect(IPRange("10.0.0.0/8")!.description == "10.0.0.0/8")
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/-1", "10.0.0.0/"] {
            #expect(IPRange(bad) == nil, "\(bad)")
        }
    }

    @Test(
        "special-purpose peers are denied in every encoding",
        arguments: [
            "127.0.0.1:53", "[::1]:53", "[::ffff:127.0.0.1]:53", "[::127.0.0.1]:53", "0.0.0.0:80", "[::]:80",
            "10.1.2.3:5000", "172.16.0.1:5000", "192.168.1.1:5000", "100.64.0.1:5000", "169.254.169.254:80",
            "[64:ff9b::a00:1]:5000", "[64:ff9b::a9fe:a9fe]:80", "[2002:7f00:1::]:5000", "[2002:a00:1::1]:5000",
            "[2001:0:5ef5:79fd:0:0:f5ff:fffe]:5000",  // Teredo of client 10.0.0.1
            "224.0.0.1:5000", "255.255.255.255:5000", "[ff02::1]:5000", "[fe80::1]:5000", "[fc00::1]:5000",
            "192.0.2.1:5000", "198.18.0.1:5000", "240.0.0.1:5000", "[::ffff:10.0.0.1]:5000",
        ])
    func deniedPeers(peer: String) {
        let address = STUNAddress(peer)!
        #expect(PeerPolicy().decide(address) != .allow)
    }

    @Test("public peers pass; port 0, own addresses and operator lists")
    func decisions() {
        let policy = PeerPolicy(
            allowed: [IPRange("10.9.0.0/16")!], denied: [IPRange("8.8.4.0/24")!],
            ownAddresses: [STUNAddress("203.0.113.9:0")!, STUNAddress("[2001:db8::9]:0")!])
        #expect(policy.decide(STUNAddress("8.8.8.8:5000")!) == .allow)
        #expect(policy.decide(STUNAddress("[2a00:1450::1]:5000")!) == .allow)
        #expect(policy.decide(STUNAddress("8.8.8.8:0")!) == .deny(.invalidAddress))
        #expect(policy.decide(STUNAddress("8.8.4.4:53")!) == .deny(.operatorDenied))
        #expect(policy.decide(STUNAddress("10.9.1.1:5000")!) == .allow)
        #expect(policy.decide(STUNAddress("10.8.1.1:5000")!) == .deny(.specialPurpose(IPRange("10.0.0.0/8")!)))
        #expect(policy.decide(STUNAddress("203.0.113.9:3478")!) == .deny(.ownAddress))
        #expect(policy.decide(STUNAddress("[::ffff:203.0.113.9]:3478")!) == .deny(.ownAddress))
        #expect(policy.decide(STUNAddress("203.0.113.9:5000")!) == .deny(.ownAddress))
        // An operator may allow our own host (loopback tests), but never our service ports on it.
        var loopback = PeerPolicy(
            allowed: [IPRange("127.0.0.1")!], ownAddresses: [STUNAddress("127.0.0.1:0")!], servicePorts: [3478, 5349])
        #expect(loopback.decide(STUNAddress("127.0.0.1:5000")!) == .allow)
        #expect(loopback.decide(STUNAddress("127.0.0.1:3478")!) == .deny(.ownAddress))
        loopback.allowed = []
        #expect(loopback.decide(STUNAddress("127.0.0.1:5000")!) == .deny(.ownAddress))
        // Our own relayed addresses are always reachable, even on loopback.
        #expect(policy.decide(STUNAddress("203.0.113.9:50000")!, isOwnRelayedAddress: true) == .allow)
        #expect(policy.decide(STUNAddress("127.0.0.1:50000")!, isOwnRelayedAddress: true) == .allow)
        // An allowed IPv4 range does not open its IPv4-mapped form (the relay sockets are IPv6-only anyway).
        #expect(policy.decide(STUNAddress("[::ffff:10.9.1.1]:5000")!) != .allow)
        // The operator's deny list applies to embedded forms too.
        #expect(policy.decide(STUNAddress("[2002:808:404::1]:53")!) == .deny(.operatorDenied))
    }

    @Test("canonical forms extract the embedded IPv4 address")
    func forms() {
        let teredo = PeerPolicy.forms(of: STUNAddress("[2001:0:4136:e378:8000:63bf:3fff:fdd2]:1")!)
        #expect(teredo.map(\.host) == ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "65.54.227.120", "192.0.2.45"])
        #expect(PeerPolicy.forms(of: STUNAddress("[2002:c000:22b::1]:1")!).map(\.host).last == "192.0.2.43")
        #expect(PeerPolicy.forms(of: STUNAddress("[64:ff9b::192.0.2.33]:1")!).map(\.host).last == "192.0.2.33")
        #expect(PeerPolicy.forms(of: STUNAddress("[2a00::1]:1")!).count == 1)
    }
}
