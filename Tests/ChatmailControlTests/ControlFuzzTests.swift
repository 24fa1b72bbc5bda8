import ChatmailControl
import ChatmailTestSupport
import Testing

/// A seeded, bounded fuzz pass over the control decoders: mutated valid lines must either be
/// refused with an error or decode to a request that survives a round trip. A crash fails it.
@Suite struct ControlFuzzTests {

    static let seeds: [[UInt8]] =
        ControlCodecTests.commands.map { ControlCodec.encode(ControlRequest(id: 5, command: $0)) }
        + [ControlCodec.encode(ControlEvent.turnSecrets(["a", "b"])), ControlCodec.encode(ControlResponse(id: 1))]

    static func mutate(_ input: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[position] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(Array(#"{}[]",:0-e\""#.utf8).randomElement(using: &rng)!, at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            default: bytes.insert(contentsOf: input.prefix(Int.random(in: 0...8, using: &rng)), at: position)
            }
        }
        return bytes
    }

    @Test func mutatedLinesAreRefusedOrRoundTrip() throws {
        var rng = SeededGenerator(seed: 2026)
        var refused = 0
        for round in 0..<20_000 {
            let line = Self.mutate(Self.seeds[round % Self.seeds.count], &rng)
            if let request = try? ControlCodec.decodeRequest(line) {
                #expect(try ControlCodec.decodeRequest(ControlCodec.encode(request)) == request)
            } else {
                refused += 1
            }
            _ = try? ControlCodec.decodeInbound(line)
        }
        #expect(refused > 1000 && refused < 20_000, "the mutations exercise both outcomes")
    }
}
