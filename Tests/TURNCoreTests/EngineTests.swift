import ChatmailTestSupport
import Testing

@testable import TURNCore

/// A client speaking to a `TURNEngine` directly, with the REST credentials of `secret`.
final class EngineHarness {
    var engine: TURNEngine
    let shared = LockedTURNSharedState(quotas: AllocationQuotas(perUsername: 2, perClientIP: 5, total: 100))
    var tuple = FiveTuple(
        client: STUNAddress("198.51.100.7:40000")!, server: STUNAddress("203.0.113.1:3478")!, transport: .udp)
    var now: Int64 = 100
    var wall: Int64 = 1_700_000_000
    var nonce = ""
    var username = "1700003600"
    var secret = "s3cret"
    var relayCounter = 0

    init(secrets: [String] = ["s3cret"]) {
        var settings = TURNEngineSettings(realm: "example.org")
        settings.limits.maximumPermissions = 4
        engine = TURNEngine(
            settings: settings, authenticator: RESTAuthenticator(secrets: secrets, realm: "example.org"),
            policy: PeerPolicy(ownAddresses: [STUNAddress("203.0.113.1:0")!, STUNAddress("127.0.0.1:0")!]),
            nonces: NonceAuthority(key: [1, 2, 3]), shared: shared)
    }

    var key: [UInt8] {
        STUNCredentials.longTermKey(
            username: username, realm: "example.org",
            password: RESTAuthenticator.password(secret: secret, username: username))
    }

    func send(_ bytes: [UInt8]) -> TURNAction {
        bytes.withUnsafeBytes { engine.handle($0, from: tuple, now: now, wallClock: wall) }
    }

    /// Sends an authenticated request and returns the parsed answer (opening relays for an Allocate).
    func request(
        _ method: STUNMethod, _ attributes: [STUNAttribute], id: STUNTransactionID = .random(), sha256: Bool = false,
        fingerprint: Bool = false
    ) throws -> STUNMessage {
        try answer(action(method, attributes, id: id, sha256: sha256, fingerprint: fingerprint))
    }

    /// What the engine makes of an authenticated request.
    func action(
        _ method: STUNMethod, _ attributes: [STUNAttribute], id: STUNTransactionID = .random(), sha256: Bool = false,
        fingerprint: Bool = false
    ) throws -> TURNAction {
        let message = STUNMessage(
            method: method, class: .request, transactionID: id,
            attributes: attributes + [.username(username), .realm("example.org"), .nonce(nonce)])
        return send(
            try message.encoded(integrity: sha256 ? .sha256(key: key) : .sha1(key: key), fingerprint: fingerprint))
    }

    func answer(_ action: TURNAction) throws -> STUNMessage {
        switch action {
        case .reply(let bytes, _):
            return try STUNMessage(parsing: bytes)
        case .allocate(let pending):
            relayCounter += 1
            let relays = pending.families.map { family in
                (
                    address: family == .ipv4
                        ? STUNAddress("203.0.113.1:\(50000 + relayCounter)")!
                        : STUNAddress("[2001:db8::1]:\(50000 + relayCounter)")!, relay: RelayID(UInt32(relayCounter))
                )
            }
            return try STUNMessage(parsing: engine.completeAllocation(pending, relays: relays, now: now))
        default:
            throw HarnessError.unexpected("\(action)")
        }
    }

    /// The 401 round trip: learns the nonce.
    func challenge() throws {
        let first = try answer(
            send(
                try STUNMessage(type: .allocateRequest, transactionID: .random(), attributes: [.requestedTransport(17)])
                    .encoded()))
        #expect(first.errorCode?.code == 401)
        #expect(first.realm == "example.org")
        nonce = try #require(first.nonce)
    }

    func allocate() throws -> STUNMessage {
        try challenge()
        return try request(.allocate, [.requestedTransport(17)])
    }
}

enum HarnessError: Error { case unexpected(String) }

@Suite("TURN engine")
struct EngineTests {
    @Test("Binding answers with XOR-MAPPED-ADDRESS only, plus FINGERPRINT when asked")
    func binding() throws {
        let harness = EngineHarness()
        let request = STUNMessage(type: .bindingRequest, transactionID: .random())
        let answer = try harness.answer(harness.send(try request.encoded()))
        #expect(answer.type == .bindingSuccess)
        #expect(answer.attributes == [.xorMappedAddress(harness.tuple.client)])
        let withFingerprint = harness.send(try request.encoded(fingerprint: true))
        guard case .reply(let bytes, _) = withFingerprint else { throw HarnessError.unexpected("") }
        #expect(STUNMessage.verifyFingerprint(bytes))
        #expect(bytes.count == 20 + 12 + 8)
    }

    @Test("Allocate: 401 with REALM and NONCE, then success with relayed, mapped address and lifetime, signed")
    func allocateFlow() throws {
        let harness = EngineHarness()
        let success = try harness.allocate()
        #expect(success.type == STUNMessageType(method: .allocate, class: .successResponse))
        #expect(success.xorRelayedAddresses == [STUNAddress("203.0.113.1:50001")!])
        #expect(success.xorMappedAddress == harness.tuple.client)
        #expect(success.lifetime == 600)
        #expect(success.software == nil)
        let bytes = try success.encoded()
        #expect(STUNMessage.verifyMessageIntegrity(bytes, key: harness.key))
        #expect(harness.engine.allocations.count == 1)
        #expect(harness.shared.isRelayedAddress(STUNAddress("203.0.113.1:50001")!))

        // A retransmission gets the cached answer, a new Allocate 437.
        let again = try harness.request(.allocate, [.requestedTransport(17)])
        #expect(again.errorCode?.code == 437)
    }

    @Test("requests with FINGERPRINT after MESSAGE-INTEGRITY get answers with both")
    func fingerprinted() throws {
        let harness = EngineHarness()
        try harness.challenge()
        let answer = try harness.request(.allocate, [.requestedTransport(17)], fingerprint: true)
        #expect(answer.errorCode == nil)
        #expect(answer.fingerprint != nil)
        #expect(STUNMessage.verifyFingerprint(try answer.encoded()))
    }

    @Test("retransmitted Allocate (same transaction ID) gets the same success")
    func retransmission() throws {
        let harness = EngineHarness()
        try harness.challenge()
        let id = STUNTransactionID.random()
        let first = try harness.request(.allocate, [.requestedTransport(17)], id: id)
        let second = try harness.request(.allocate, [.requestedTransport(17)], id: id)
        #expect(first == second)
        #expect(first.errorCode == nil)
    }

    @Test("bad credentials: wrong secret, expired username, wrong realm get 401; stale nonce 438")
    func credentials() throws {
        let harness = EngineHarness()
        try harness.challenge()
        harness.secret = "wrong"
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode?.code == 401)
        harness.secret = "s3cret"
        harness.username = "1699999999"
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode?.code == 401)
        harness.username = "1700003600:alice"
        harness.now += 600
        let stale = try harness.request(.allocate, [.requestedTransport(17)])
        #expect(stale.errorCode?.code == 438)
        harness.nonce = try #require(stale.nonce)
        #expect(stale.realm == "example.org")
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode == nil)
    }

    @Test("secret rotation: credentials of the previous secret work, live allocations stay until they expire")
    func rotation() throws {
        let harness = EngineHarness(secrets: ["s3cret"])
        _ = try harness.allocate()
        harness.engine.authenticator.secrets = ["fresh", "s3cret"]
        #expect(try harness.request(.refresh, [.lifetime(600)]).lifetime == 600)
        harness.engine.authenticator.secrets = ["newest", "fresh"]
        // The old secret is gone: the live allocation keeps working, a new one with its credentials is refused.
        #expect(try harness.request(.refresh, [.lifetime(600)]).lifetime == 600)
        harness.tuple.client.port += 1
        try harness.challenge()
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode?.code == 401)
        harness.tuple.client.port -= 1
        // Past the credential's expiry even the live allocation is refused.
        harness.wall = 1_700_003_600
        #expect(try harness.request(.refresh, [.lifetime(600)]).errorCode?.code == 401)
    }

    @Test("Allocate checks: transport, families, quota, MESSAGE-INTEGRITY-SHA256")
    func allocateChecks() throws {
        let harness = EngineHarness()
        try harness.challenge()
        #expect(try harness.request(.allocate, []).errorCode?.code == 400)
        #expect(try harness.request(.allocate, [.requestedTransport(6)]).errorCode?.code == 442)
        #expect(
            try harness.request(.allocate, [.requestedTransport(17), .requestedAddressFamily(.ipv6)]).errorCode?.code
                == 440)
        #expect(
            try harness.request(
                .allocate, [.requestedTransport(17), .requestedAddressFamily(.ipv4), .additionalAddressFamily(.ipv6)]
            ).errorCode?.code == 400)
        let dual = try harness.request(
            .allocate, [.requestedTransport(17), .additionalAddressFamily(.ipv6)], sha256: true)
        #expect(dual.xorRelayedAddresses.count == 1)
        #expect(dual.addressErrorCodes.first?.error.code == 440)
        #expect(dual.messageIntegritySHA256 != nil && dual.messageIntegrity == nil)
        #expect(STUNMessage.verifyMessageIntegritySHA256(try dual.encoded(), key: harness.key))
        // Per-username quota of 2.
        harness.tuple.client.port = 40001
        try harness.challenge()
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode == nil)
        harness.tuple.client.port = 40002
        try harness.challenge()
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode?.code == 486)
    }

    @Test("EVEN-PORT with R asks for a reservation and the response carries its token; RESERVATION-TOKEN takes it")
    func evenPortReservations() throws {
        let harness = EngineHarness()
        try harness.challenge()
        guard
            case .allocate(let rtp) = try harness.action(
                .allocate, [.requestedTransport(17), .evenPort(reserveNextPort: true)])
        else { Issue.record("no allocation"); return }
        #expect(rtp.evenPort && rtp.reserveNextPort && rtp.reservationToken == nil)
        let relay = (address: STUNAddress("203.0.113.1:50000")!, relay: RelayID(1))
        let answer = try STUNMessage(
            parsing: harness.engine.completeAllocation(
                rtp, relays: [relay], reservationToken: 0x0123_4567_89AB_CDEF, now: harness.now))
        #expect(answer.reservationToken == 0x0123_4567_89AB_CDEF)
        #expect(answer.xorRelayedAddresses == [relay.address])
        // EVEN-PORT without R: an even port, nothing reserved, no token.
        harness.tuple.client.port = 40001
        try harness.challenge()
        guard
            case .allocate(let even) = try harness.action(
                .allocate, [.requestedTransport(17), .evenPort(reserveNextPort: false)])
        else { Issue.record("no allocation"); return }
        #expect(even.evenPort && !even.reserveNextPort)
        #expect(try harness.answer(.allocate(even)).reservationToken == nil)
        // The RTCP allocation: the token goes to the I/O layer, which has the reserved socket.
        harness.tuple.client.port = 40002
        harness.username = "1700003600:second"
        try harness.challenge()
        guard case .allocate(let rtcp) = try harness.action(.allocate, [.requestedTransport(17), .reservationToken(7)])
        else { Issue.record("no allocation"); return }
        #expect(rtcp.reservationToken == 7 && !rtcp.evenPort)
        // A token with EVEN-PORT or an address family is a bad request.
        for extra: STUNAttribute in [
            .evenPort(reserveNextPort: false), .requestedAddressFamily(.ipv4), .additionalAddressFamily(.ipv6),
        ] {
            #expect(
                try harness.request(.allocate, [.requestedTransport(17), .reservationToken(7), extra]).errorCode?.code
                    == 400)
        }
    }

    @Test("dual-stack relays when IPv6 is configured")
    func dualStack() throws {
        let harness = EngineHarness()
        harness.engine.settings.relayFamilies = [.ipv4, .ipv6]
        try harness.challenge()
        let dual = try harness.request(.allocate, [.requestedTransport(17), .additionalAddressFamily(.ipv6)])
        #expect(dual.xorRelayedAddresses.map(\.family) == [.ipv4, .ipv6])
        #expect(try harness.request(.createPermission, [.xorPeerAddress(STUNAddress("[2a00::1]:5")!)]).errorCode == nil)
    }

    @Test("permissions, channels, Send indications and data from peers")
    func dataPaths() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        let peer = STUNAddress("8.8.8.8:5000")!
        let tuple = harness.tuple
        #expect(harness.engine.inboundDelivery(from: peer, to: tuple, length: 10, now: harness.now) == nil)
        #expect(try harness.request(.createPermission, [.xorPeerAddress(peer)]).errorCode == nil)
        #expect(harness.engine.inboundDelivery(from: peer, to: tuple, length: 10, now: harness.now) == .dataIndication)

        // Send indication: forwarded with the DATA range.
        let send = STUNMessage(
            type: .sendIndication, transactionID: .random(), attributes: [.xorPeerAddress(peer), .data([1, 2, 3])])
        let sendBytes = try send.encoded()
        guard case .forward(let to, let relay, let payload) = harness.send(sendBytes) else {
            throw HarnessError.unexpected("no forward")
        }
        #expect(to == peer && relay == RelayID(1) && Array(sendBytes[payload]) == [1, 2, 3])
        // Without a permission: dropped.
        let other = STUNMessage(
            type: .sendIndication, transactionID: .random(),
            attributes: [.xorPeerAddress(STUNAddress("9.9.9.9:1")!), .data([1])])
        guard case .drop = harness.send(try other.encoded()) else { throw HarnessError.unexpected("not dropped") }

        #expect(try harness.request(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(peer)]).errorCode == nil)
        #expect(harness.engine.channelTarget(0x4001, from: tuple, length: 3, now: harness.now)?.peer == peer)
        #expect(
            harness.engine.inboundDelivery(from: peer, to: tuple, length: 3, now: harness.now) == .channelData(0x4001))
        #expect(
            try harness.request(.channelBind, [.channelNumber(0x3000), .xorPeerAddress(peer)]).errorCode?.code == 400)
        #expect(
            try harness.request(.channelBind, [.channelNumber(0x4002), .xorPeerAddress(peer)]).errorCode?.code == 400)

        // Expiry: the permission after 300 s, the channel after 600 s.
        harness.now += 301
        #expect(harness.engine.channelTarget(0x4001, from: tuple, length: 3, now: harness.now) != nil)
        harness.now += 300
        #expect(harness.engine.channelTarget(0x4001, from: tuple, length: 3, now: harness.now) == nil)
    }

    @Test(
        "denied peers are refused with 403 in CreatePermission and ChannelBind, and never forwarded",
        arguments: [
            "127.0.0.1:53", "[::ffff:127.0.0.1]:53", "0.0.0.0:53", "10.0.0.1:5", "169.254.169.254:80",
            "[64:ff9b::a00:1]:5", "[2002:7f00:1::]:5", "[::1]:5",
        ])
    func deniedPeers(peer: String) throws {
        let harness = EngineHarness()
        harness.engine.settings.relayFamilies = [.ipv4, .ipv6]
        try harness.challenge()
        _ = try harness.request(.allocate, [.requestedTransport(17), .additionalAddressFamily(.ipv6)])
        let address = STUNAddress(peer)!
        #expect(try harness.request(.createPermission, [.xorPeerAddress(address)]).errorCode?.code == 403)
        #expect(
            try harness.request(.channelBind, [.channelNumber(0x4000), .xorPeerAddress(address)]).errorCode?.code
                == 403)
        let send = STUNMessage(
            type: .sendIndication, transactionID: .random(), attributes: [.xorPeerAddress(address), .data([1])])
        guard case .drop = harness.send(try send.encoded()) else { throw HarnessError.unexpected("forwarded") }
    }

    @Test("counters: 401s, allocations, refused peers, quota refusals and relayed data both ways")
    func counters() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        #expect(harness.engine.counters.unauthorized == 1 && harness.engine.counters.allocations == 1)
        #expect(
            try harness.request(.createPermission, [.xorPeerAddress(STUNAddress("10.0.0.1:5")!)]).errorCode?.code
                == 403)
        #expect(harness.engine.counters.refusedPeers == 1)
        let peer = STUNAddress("8.8.8.8:5000")!
        _ = try harness.request(.createPermission, [.xorPeerAddress(peer)])
        let send = STUNMessage(
            type: .sendIndication, transactionID: .random(), attributes: [.xorPeerAddress(peer), .data([1, 2, 3])])
        _ = harness.send(try send.encoded())
        _ = harness.engine.inboundDelivery(from: peer, to: harness.tuple, length: 700, now: harness.now)
        _ = harness.engine.inboundDelivery(
            from: STUNAddress("9.9.9.9:1")!, to: harness.tuple, length: 9, now: harness.now)
        #expect(harness.engine.counters.packetsToPeers == 1 && harness.engine.counters.bytesToPeers == 3)
        #expect(harness.engine.counters.packetsFromPeers == 1 && harness.engine.counters.bytesFromPeers == 700)
        // The per-credential quota is 2: a second client with the same username gets 486 on its third try.
        for port in 40001...40002 {
            harness.tuple.client = STUNAddress("198.51.100.7:\(port)")!
            _ = try harness.allocate()
        }
        #expect(harness.engine.counters.quotaRefusals == 1 && harness.engine.counters.allocations == 2)
    }

    @Test("our own relayed addresses are reachable peers, even on loopback")
    func hairpin() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        harness.shared.relayOpened(STUNAddress("127.0.0.1:50999")!)
        #expect(
            try harness.request(.createPermission, [.xorPeerAddress(STUNAddress("127.0.0.1:50999")!)]).errorCode == nil)
        #expect(
            try harness.request(.createPermission, [.xorPeerAddress(STUNAddress("127.0.0.1:50998")!)]).errorCode?.code
                == 403)
        // The permission is per host, but Send to another port of it is still refused; to the relayed one it goes.
        func send(to peer: String) throws -> TURNAction {
            harness.send(
                try STUNMessage(
                    type: .sendIndication, transactionID: .random(),
                    attributes: [.xorPeerAddress(STUNAddress(peer)!), .data([1])]
                ).encoded())
        }
        guard case .drop = try send(to: "127.0.0.1:53") else { throw HarnessError.unexpected("forwarded") }
        guard case .forward = try send(to: "127.0.0.1:50999") else { throw HarnessError.unexpected("dropped") }
        // Once that allocation is gone, its port is just a port on our host.
        harness.shared.relayClosed(STUNAddress("127.0.0.1:50999")!)
        guard case .drop = try send(to: "127.0.0.1:50999") else { throw HarnessError.unexpected("forwarded") }
    }

    @Test("a channel or permission to our own relayed address carries nothing once that allocation is gone")
    func staleHairpinChannel() throws {
        let harness = EngineHarness()
        let a = harness.tuple
        let aRelay = try #require(try harness.allocate().xorRelayedAddresses.first)
        harness.tuple.client.port += 1
        let b = harness.tuple
        _ = try harness.allocate()
        #expect(try harness.request(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(aRelay)]).errorCode == nil)
        #expect(harness.engine.channelTarget(0x4001, from: b, length: 3, now: harness.now)?.peer == aRelay)
        #expect(
            harness.engine.inboundDelivery(from: aRelay, to: b, length: 3, now: harness.now) == .channelData(0x4001))

        // A deletes itself: its port is now anyone's on our host, and B's channel and permission carry nothing.
        harness.tuple = a
        try harness.challenge()  // nonces are per client address
        #expect(try harness.request(.refresh, [.lifetime(0)]).lifetime == 0)
        #expect(harness.engine.channelTarget(0x4001, from: b, length: 3, now: harness.now) == nil)
        #expect(harness.engine.inboundDelivery(from: aRelay, to: b, length: 3, now: harness.now) == nil)
        harness.tuple = b
        try harness.challenge()
        #expect(
            try harness.request(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(aRelay)]).errorCode?.code == 403)

        // An allocation that gets that address again is one of ours again.
        harness.shared.relayOpened(aRelay)
        #expect(harness.engine.channelTarget(0x4001, from: b, length: 3, now: harness.now)?.peer == aRelay)
        // A peer the policy allows never pays for the check.
        let outside = STUNAddress("8.8.8.8:5000")!
        #expect(try harness.request(.channelBind, [.channelNumber(0x4002), .xorPeerAddress(outside)]).errorCode == nil)
        #expect(harness.engine.allocation(b)?.channel(0x4002, now: harness.now)?.onlyAsOurRelay == false)
        #expect(harness.engine.allocation(b)?.channel(0x4001, now: harness.now)?.onlyAsOurRelay == true)
    }

    @Test("Refresh extends, Refresh 0 deletes and closes the relay, 437 afterwards; sweep expires")
    func refresh() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        #expect(try harness.request(.refresh, [.lifetime(1200)]).lifetime == 1200)
        let message = STUNMessage(
            method: .refresh, class: .request, transactionID: .random(),
            attributes: [.lifetime(0), .username(harness.username), .realm("example.org"), .nonce(harness.nonce)])
        guard
            case .reply(let bytes, let closing) = harness.send(try message.encoded(integrity: .sha1(key: harness.key)))
        else { throw HarnessError.unexpected("") }
        #expect(try STUNMessage(parsing: bytes).lifetime == 0)
        #expect(closing == [RelayID(1)])
        #expect(harness.engine.allocations.isEmpty)
        #expect(harness.shared.allocationCount == 0)
        #expect(try harness.request(.refresh, []).errorCode?.code == 437)

        _ = try harness.allocate()
        #expect(harness.engine.sweep(now: harness.now + 599).isEmpty)
        #expect(harness.engine.sweep(now: harness.now + 600) == [RelayID(2)])
        #expect(!harness.shared.isRelayedAddress(STUNAddress("203.0.113.1:50002")!))
    }

    @Test("another username on an existing allocation gets 441; unknown attributes 420; garbage is dropped")
    func errors() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        harness.username = "1700003601"
        #expect(try harness.request(.refresh, []).errorCode?.code == 441)
        // An Allocate on that 5-tuple gets 437 instead: a client retries that from another port.
        #expect(try harness.request(.allocate, [.requestedTransport(17)]).errorCode?.code == 437)
        let unknown = try harness.request(.refresh, [.other(STUNAttributeType(rawValue: 0x7777), [1, 2, 3, 4])])
        #expect(unknown.errorCode?.code == 420)
        #expect(unknown.unknownAttributes == [STUNAttributeType(rawValue: 0x7777)])
        guard case .drop = harness.send([0xde, 0xad, 0xbe, 0xef]) else { throw HarnessError.unexpected("") }
        let response = STUNMessage(type: .bindingSuccess, transactionID: .random())
        guard case .drop = harness.send(try response.encoded()) else { throw HarnessError.unexpected("") }
    }

    @Test("unauthenticated error answers are rate-limited per source")
    func rateLimit() throws {
        let harness = EngineHarness()
        var answered = 0
        for _ in 0..<300 {
            let bytes = try STUNMessage(type: .allocateRequest, transactionID: .random()).encoded()
            if case .reply = harness.send(bytes) { answered += 1 }
        }
        #expect(answered == 200)
    }

    @Test("seeded fuzz of the engine: random requests never trap")
    func fuzz() throws {
        let harness = EngineHarness()
        _ = try harness.allocate()
        var rng = SeededGenerator(seed: 42)
        let template = try STUNMessage(
            method: .createPermission, class: .request, transactionID: .random(),
            attributes: [
                .xorPeerAddress(STUNAddress("8.8.8.8:1")!), .username(harness.username), .realm("example.org"),
                .nonce(harness.nonce),
            ]
        ).encoded(integrity: .sha1(key: harness.key))
        for _ in 0..<5000 {
            var bytes = template
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = harness.send(bytes)
        }
    }
}
