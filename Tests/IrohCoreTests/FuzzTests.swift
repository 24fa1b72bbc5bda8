import ChatmailTestSupport
import NIOCore
import Testing

@testable import IrohCore

/// Seeded random input for both framings: decoding never crashes, never reads past a frame, and either yields a
/// frame or a `RelayError`. Inputs are random bytes and mutations (bit flips, truncations) of valid frames.
@Suite struct FuzzTests {
    static let iterations = 20_000

    static let legacySeeds: [[UInt8]] = [
        [2, 0, 0, 0, 0x6a] + LegacyFrameTests.clientInfoMessage.dropFirst(),
        hex("04 00000024 \(publicKeyHex) 01020304"), hex("0c 00000008 2a2a2a2a2a2a2a2a"), hex("07 00000001 01"),
        // ClientInfo with the small-order identity key (issue 12.5).
        [2, 0, 0, 0, 0x6a]
            + Array(
                SmallOrderKeyTests.clientInfo(
                    key: SmallOrderKeyTests.identity, r: SmallOrderKeyTests.identity, s: SmallOrderKeyTests.zero
                ).readableBytesView.dropFirst()),
    ]
    static let relaySeeds: [[UInt8]] = [
        RelayFrameTests.clientAuth, hex("04 \(publicKeyHex) 02 01020304"),
        hex("05 \(publicKeyHex) 00 0002 01020304"), hex("09 2a2a2a2a2a2a2a2a"), hex("0a 2a2a2a2a2a2a2a2a"),
        // ClientAuth with the small-order identity key (issue 12.5).
        Array(
            SmallOrderKeyTests.clientAuth(
                key: SmallOrderKeyTests.identity, r: SmallOrderKeyTests.identity, s: SmallOrderKeyTests.zero
            ).readableBytesView),
    ]

    static func mutate(_ seed: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = seed
        switch random.next() % 4 {
        case 0:
            return (0..<Int(random.next() % 80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        case 1:
            if !bytes.isEmpty { bytes.removeLast(Int(random.next() % UInt64(bytes.count))) }
        case 2:
            for _ in 0..<(1 + random.next() % 4) where !bytes.isEmpty {
                bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8))
            }
        default:
            bytes += (0..<Int(random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        return bytes
    }

    @Test func legacyStreamFraming() {
        var random = SeededGenerator(seed: 0x1a0)
        var frames = 0
        for _ in 0..<Self.iterations {
            let seed = Self.legacySeeds[Int(random.next() % UInt64(Self.legacySeeds.count))]
            var stream = ByteBuffer(bytes: Self.mutate(seed, &random))
            var session = RelaySession(family: .legacy, challenge: [])
            while true {
                let before = stream.readableBytes
                guard let frame = try? LegacyProtocol.readStreamFrame(from: &stream, maxFrameSize: 1 << 16) else {
                    break
                }
                #expect(stream.readableBytes == before - 5 - frame.payload.readableBytes)
                frames += 1
                do {
                    // Only the vectors' real key ever authenticates, never a mutated or small-order one.
                    if case .authenticated(let key) = try session.receive(
                        legacyType: frame.type, payload: frame.payload)
                    {
                        #expect(key == vectorKey)
                    }
                } catch { break }
            }
        }
        #expect(frames > 100)
    }

    @Test func relayMessages() {
        var random = SeededGenerator(seed: 0x1b0)
        var accepted = 0
        for _ in 0..<Self.iterations {
            let seed = Self.relaySeeds[Int(random.next() % UInt64(Self.relaySeeds.count))]
            let message = ByteBuffer(bytes: Self.mutate(seed, &random))
            if let frame = try? RelayProtocol.decodeClientFrame(message) {
                accepted += 1
                if case .datagrams(_, let datagrams) = frame { #expect(datagrams.contents.readableBytes > 0) }
            }
            var session = RelaySession(family: .relay(.v2), challenge: RelayFrameTests.challenge)
            if case .authenticated(let key)? = try? session.receive(message: message) { #expect(key == vectorKey) }
            var legacy = RelaySession(family: .legacy, challenge: [])
            if case .authenticated(let key)? = try? legacy.receive(message: message) { #expect(key == vectorKey) }
        }
        #expect(accepted > 100)
    }

    static func plausible(_ name: String) -> String {
        switch name.lowercased() {
        case "upgrade": "websocket"
        case "sec-websocket-version": "13"
        case "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="
        case "sec-websocket-protocol": "iroh-relay-v2, iroh-relay-v1"
        default: "123az__."
        }
    }

    @Test func upgradeDispatchAndCaptivePortal() {
        var random = SeededGenerator(seed: 0x1c0)
        let names = [
            "Upgrade", "upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key", "Sec-WebSocket-Protocol",
            "X-Iroh-Challenge", "X-Tailscale-Challenge", "Connection",
        ]
        let values = [
            "websocket", "iroh derp http", "13", "8", "iroh-relay-v1", "iroh-relay-v2", "iroh-relay-v2, x",
            "", " , ", "key==", "upgrade", "123az__.", "\u{0}\u{ff}é",
        ]
        var decisions: [String: Int] = [:]
        for _ in 0..<Self.iterations {
            // Each name with probability 3/4, mostly with a plausible value, else any; sometimes with noise.
            let headers = names.filter { _ in random.next() % 4 != 0 }.map { name in
                let noise = String(
                    (0..<Int(random.next() % 5)).map { _ in Character(UnicodeScalar(UInt8(random.next() % 128))) })
                let plausible = random.next() % 3 != 0
                let value = plausible ? Self.plausible(name) : values[Int(random.next() % UInt64(values.count))]
                return (name: name, value: value + (random.next() % 6 == 0 ? noise : ""))
            }
            let uri = ["/relay", "/derp", "/relay?x", "/", "//relay", ""][Int(random.next() % 6)]
            let decision = UpgradeDispatch(method: random.next() % 8 == 0 ? "POST" : "GET", uri: uri, headers: headers)
            switch decision {
            case .relayWebSocket(let version):
                #expect(headers.contains { $0.value.contains(version.subprotocol) })
                decisions["relay", default: 0] += 1
            case .legacyStream:
                #expect(headers.contains { $0.value.lowercased().contains("iroh derp http") })
                decisions["stream", default: 0] += 1
            case .legacyWebSocket: decisions["websocket", default: 0] += 1
            case .reject(let status, _, _):
                #expect([400, 404, 405].contains(status))
                decisions["reject", default: 0] += 1
            }
            for (name, value) in CaptivePortal.responseHeaders(for: headers) {
                #expect(name.hasPrefix("X-") && value.hasPrefix("response ") && !value.contains("\r"))
            }
        }
        #expect(decisions.count == 4, "every kind of decision was reached: \(decisions)")
    }
}
