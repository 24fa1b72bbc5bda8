import ChatmailConfig
import ChatmailCrypto
import IrohCore
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import IrohServer

/// Issue 12.6: iroh 0.35's ClientInfo signs a constant, so a captured one replays. A second connection with a
/// connected key no longer takes over at once: the active one is pinged, and only if it does not answer is it
/// closed and the newcomer promoted (as when a real client reconnects and its old connection is dead).
@Suite struct LegacyDuplicateKeyTests {
    static let seed = [UInt8](repeating: 0x2a, count: 32)
    static let otherSeed = [UInt8](repeating: 0x07, count: 32)

    /// A ClientInfo stream frame for `seed`'s key (type, length, magic, key, signature over version 3, version).
    static func clientInfo(seed: [UInt8]) throws -> ByteBuffer {
        let key = try Crypto.ed25519PublicKey(privateKey: seed)
        let signature = try Crypto.ed25519Sign(privateKey: seed, message: [3])
        return ByteBuffer(bytes: LegacyProtocol.magic + key + signature + [3])
    }

    static func connection(on loop: EmbeddedEventLoop, hub: RelayHub, seed: [UInt8]) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(
            RelayConnectionHandler(family: .legacy, streamHeader: true, hub: hub, logger: hub.logger))
        try channel.writeInbound(RelayInbound.legacyFrame(type: 2, payload: try clientInfo(seed: seed)))
        return channel
    }

    /// Frame types written to `channel` so far.
    static func written(_ channel: EmbeddedChannel) throws -> [(type: UInt8, payload: ByteBuffer)] {
        var frames: [(UInt8, ByteBuffer)] = []
        while var frame = try channel.readOutbound(as: ByteBuffer.self) {
            while let (type, length) = frame.readMultipleIntegers(as: (UInt8, UInt32).self) {
                frames.append((type, frame.readSlice(length: Int(length))!))
            }
        }
        return frames
    }

    /// `sender` sends one packet to `seed`'s key.
    static func send(from sender: EmbeddedChannel, to seed: [UInt8]) throws {
        let key = try Crypto.ed25519PublicKey(privateKey: seed)
        try sender.writeInbound(RelayInbound.legacyFrame(type: 4, payload: ByteBuffer(bytes: key + [0xab])))
    }

    static func setUp() throws -> (EmbeddedEventLoop, RelayHub, EmbeddedChannel, EmbeddedChannel, EmbeddedChannel) {
        let loop = EmbeddedEventLoop()
        let hub = RelayHub(eventLoop: loop, limits: IrohLimits(), logger: Logger(label: "test"))
        let sender = try connection(on: loop, hub: hub, seed: otherSeed)
        let first = try connection(on: loop, hub: hub, seed: seed)
        let replayed = try connection(on: loop, hub: hub, seed: seed)
        return (loop, hub, sender, first, replayed)
    }

    @Test func aReplayedClientInfoDoesNotTakeOverALiveConnection() throws {
        let (loop, hub, sender, first, replayed) = try Self.setUp()
        #expect(first.isActive && replayed.isActive)
        #expect(hub.counters.duplicateKeys == 1)
        // The active connection is pinged at once; it answers.
        let ping = try #require(try Self.written(first).first { $0.type == 12 })
        try first.writeInbound(RelayInbound.legacyFrame(type: 13, payload: ping.payload))
        loop.advanceTime(by: .seconds(6))
        #expect(first.isActive)
        try Self.send(from: sender, to: Self.seed)
        #expect(try Self.written(first).map(\.type) == [5], "packets still go to the first connection")
        #expect(try Self.written(replayed).isEmpty)
        // When the first one ends, the waiting one receives.
        _ = try first.finish()
        try Self.send(from: sender, to: Self.seed)
        #expect(try Self.written(replayed).map(\.type) == [5])
        #expect(hub.counters.legacySessions == 2)
    }

    @Test func aReconnectingClientTakesOverOnceTheOldConnectionFailsThePing() throws {
        let (loop, hub, sender, first, second) = try Self.setUp()
        #expect(try Self.written(first).contains { $0.type == 12 })
        loop.advanceTime(by: .seconds(4))
        #expect(first.isActive, "within the 5 s pong timeout")
        loop.advanceTime(by: .seconds(2))
        #expect(!first.isActive, "no pong: closed")
        try Self.send(from: sender, to: Self.seed)
        #expect(try Self.written(second).map(\.type) == [5])
        #expect(hub.counters.legacySessions == 2)
    }
}
