import NIOCore
import Testing

@testable import IrohCore

@Suite struct UpgradeDispatchTests {
    static let webSocket = [
        (name: "Upgrade", value: "websocket"), (name: "Connection", value: "Upgrade"),
        (name: "Sec-WebSocket-Key", value: "hncdH1ZYQtbOGWhZUnNpFw=="), (name: "Sec-WebSocket-Version", value: "13"),
    ]

    @Test func legacyStreamNeedsNoConnectionHeader() {
        // The captured 0.35 request (notes §2.1).
        let headers = [(name: "upgrade", value: "iroh derp http"), (name: "host", value: "127.0.0.1:38003")]
        #expect(UpgradeDispatch(method: "GET", uri: "/relay", headers: headers) == .legacyStream)
        #expect(UpgradeDispatch(method: "GET", uri: "/derp", headers: headers) == .legacyStream)
    }

    @Test func subProtocolPicksTheHighestOffered() {
        let offers = [
            ("iroh-relay-v2, iroh-relay-v1", UpgradeDispatch.relayWebSocket(.v2)),
            ("iroh-relay-v1,iroh-relay-v2", .relayWebSocket(.v2)),
            ("iroh-relay-v1", .relayWebSocket(.v1)),
            ("iroh-relay-v3, iroh-relay-v1", .relayWebSocket(.v1)),
        ]
        for (offer, expected) in offers {
            let headers = Self.webSocket + [(name: "sec-websocket-protocol", value: offer)]
            #expect(UpgradeDispatch(method: "GET", uri: "/relay", headers: headers) == expected, "\(offer)")
        }
        #expect(UpgradeDispatch(method: "GET", uri: "/relay?x=1", headers: Self.webSocket) == .legacyWebSocket)
    }

    @Test func rejections() {
        func status(_ method: String, _ uri: String, _ headers: [(name: String, value: String)]) -> Int? {
            if case .reject(let status, _, _) = UpgradeDispatch(method: method, uri: uri, headers: headers) {
                return status
            }
            return nil
        }
        #expect(status("GET", "/relay", []) == 400)
        #expect(status("GET", "/relay", [(name: "Upgrade", value: "h2c")]) == 400)
        #expect(status("GET", "/relay", Self.webSocket + [(name: "Sec-WebSocket-Protocol", value: "chat")]) == 400)
        #expect(status("POST", "/relay", Self.webSocket) == 405)
        #expect(status("GET", "/other", Self.webSocket) == 404)
        let oldVersion = Self.webSocket.map { $0.name == "Sec-WebSocket-Version" ? (name: $0.name, value: "8") : $0 }
        guard case .reject(400, let headers, _) = UpgradeDispatch(method: "GET", uri: "/relay", headers: oldVersion)
        else {
            Issue.record("version 8 not refused")
            return
        }
        #expect(headers.map(\.1) == ["13"])
    }

    @Test func captivePortalEchoesValidChallengesOfBothGenerations() {
        let headers = CaptivePortal.responseHeaders(for: [
            (name: "X-Iroh-Challenge", value: "123az__."), (name: "x-tailscale-challenge", value: "ts_relay.example"),
        ])
        #expect(headers.map(\.0) == ["X-Iroh-Response", "X-Tailscale-Response"])
        #expect(headers.map(\.1) == ["response 123az__.", "response ts_relay.example"])
        for bad in ["", "a b", String(repeating: "a", count: 64), "x\r\nSet-Cookie: 1"] {
            #expect(CaptivePortal.responseHeaders(for: [(name: "X-Iroh-Challenge", value: bad)]).isEmpty)
        }
    }
}

@Suite struct EndpointRegistryTests {
    let a = EndpointKey([UInt8](repeating: 1, count: 32))!
    let b = EndpointKey([UInt8](repeating: 2, count: 32))!

    /// iroh 0.35 proves nothing in its handshake: a newcomer waits while the active connection is checked.
    @Test func legacyDuplicateWaitsWhileTheActiveOneIsProbed() {
        var registry = EndpointRegistry<Int>(policy: .keepActive)
        #expect(registry.register(a, 1).isEmpty)
        #expect(registry.register(a, 2) == [.probe(1)])
        #expect(registry.register(a, 3) == [.probe(1)])
        #expect(registry.destination(for: a) == 1)
        #expect(registry.unregister(a, 2).isEmpty)  // a waiting one ending changes nothing
        #expect(registry.destination(for: a) == 1)
        #expect(registry.unregister(a, 1) == [.promoted(3)])  // the active one ended (closed, or failed the probe)
        #expect(registry.destination(for: a) == 3)
    }

    @Test func relayDuplicateKeepsTheOldInactiveAndPromotesIt() {
        var registry = EndpointRegistry<Int>(policy: .keepInactive)
        _ = registry.register(a, 1)
        #expect(registry.register(a, 2) == [.demoted(1)])
        #expect(registry.register(a, 3) == [.demoted(2)])
        #expect(registry.destination(for: a) == 3)
        #expect(registry.unregister(a, 2).isEmpty)
        #expect(registry.unregister(a, 3) == [.promoted(1)])
        #expect(registry.destination(for: a) == 1)
        #expect(registry.unregister(a, 1).isEmpty)
        #expect(registry.destination(for: a) == nil && registry.count == 0)
    }

    @Test func goneIsSentToThoseTheSourceSentTo() {
        var registry = EndpointRegistry<Int>(policy: .keepInactive)
        let c = EndpointKey([UInt8](repeating: 3, count: 32))!
        _ = registry.register(a, 1)
        _ = registry.register(b, 2)
        registry.recordSent(from: a, to: b)
        registry.recordSent(from: a, to: c)  // not connected: no notice
        registry.recordSent(from: b, to: a)
        #expect(registry.unregister(a, 1) == [.gone(a, to: 2)])
        #expect(registry.unregister(b, 2).isEmpty)  // a is gone
    }
}

@Suite struct TimersTests {
    @Test func tokenBucketAllowsTheBurstThenTheRate() {
        var bucket = TokenBucket(rate: 1000, burst: 500, now: 0)
        let r1 = bucket.consume(500, now: 0)
        #expect(r1 == 0)
        #expect(abs(bucket.consume(100, now: 0) - 0.1) < 1e-9)
        #expect(bucket.delay(now: 0.1) == 0)
        #expect(bucket.consume(400, now: 10) == 0)  // refilled, but only to the burst
        let r2 = bucket.consume(101, now: 10)
        #expect(r2 > 0)
    }

    @Test func pingTimeouts() {
        var legacy = PingTracker(timeout: .fixed(5))
        let r3 = legacy.sent(1, now: 0)
        #expect(r3 == 5)
        let r4 = legacy.received(pong: 2, now: 1)
        #expect(!r4)
        #expect(!legacy.expired(now: 4.9) && legacy.expired(now: 5.1))
        let r5 = legacy.received(pong: 1, now: 5.1)
        #expect(r5)
        #expect(!legacy.expired(now: 100))

        var relay = PingTracker(timeout: .roundTrips)
        #expect(relay.timeout == 5)
        _ = relay.sent(7, now: 0)
        let r6 = relay.received(pong: 7, now: 0.01)
        #expect(r6)
        #expect(relay.timeout == 0.5)
        _ = relay.sent(8, now: 1)
        let r7 = relay.received(pong: 8, now: 3)
        #expect(r7)
        #expect(relay.timeout == 5)
        _ = relay.sent(9, now: 10)
        let r8 = relay.received(pong: 9, now: 11)
        #expect(r8)
        #expect(relay.timeout == 3)
    }
}
