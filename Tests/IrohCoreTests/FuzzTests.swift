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
    ]
    static let relaySeeds: [[UInt8]] = [
        RelayFrameTests.clientAuth, hex("04 \(publicKeyHex) 02 01020304"),
        hex("05 \(publicKeyHex) 00 0002 01020304"), hex("09 2a2a2a2a2a2a2a2a"), hex("0a 2a2a2a2a2a2a2a2a"),
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
                do { _ = try session.receive(legacyType: frame.type, payload: frame.payload) } catch { break }
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
            _ = try? session.receive(message: message)
            var legacy = RelaySession(family: .legacy, challenge: [])
            _ = try? legacy.receive(message: message)
        }
        #expect(accepted > 100)
    }
}
