import Logging
import NIOCore
import NIOEmbedded
import ShadowsocksCore
import Testing

@testable import ShadowsocksServer

@Suite("Connection handler: failed handshakes and caps")
struct ProbingTests {
    static func state(maxHalfOpen: Int = 10, perSource: Int = 10) throws -> ServerState {
        let credential = ShadowsocksCredential(method: .aes256GCM, keyText: "probe-test")!
        let policy = DestinationPolicy(
            names: ["chat.example.org"], addresses: [], upstreams: [993: .init(host: "127.0.0.1", port: 1)])
        return try ServerState(
            settings: ShadowsocksSettings(
                credential: credential, policy: policy, handshakeTimeout: .seconds(60), maxHalfOpen: maxHalfOpen,
                maxHalfOpenPerSource: perSource),
            logger: Logger(label: "test"))
    }

    static func connection(_ state: ServerState, from source: String = "192.0.2.1") throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ConnectionHandler(server: state))
        // An embedded channel's remote address is where it "connects" to: the client's, here.
        try channel.connect(to: SocketAddress(ipAddress: source, port: 40000)).wait()
        return channel
    }

    @Test(
        "Probes of the researched lengths get no byte and stay open until the deadline, then close",
        arguments: [
            1, 8, 12, 16, 17, 22, 33, 41, 49, 50, 51, 66, 221, 5000,
        ])
    func probe(length: Int) throws {
        let state = try Self.state()
        let channel = try Self.connection(state)
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        try channel.writeInbound(ByteBuffer(bytes: bytes))  // more after the failure is read and dropped too
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        // Salt (32) and sealed length (18) must be there before anything can fail.
        #expect(state.counters.failedHandshakes == (2 * length >= 50 ? 1 : 0))
    }

    /// A SIP004 request from a client with the key (salt, then target and `payload` sealed as one chunk).
    static func request(to name: String, port: UInt16, payload: [UInt8] = [0x16, 0x03, 0x01]) throws -> ByteBuffer {
        let credential = ShadowsocksCredential(method: .aes256GCM, keyText: "probe-test")!
        var salt = [UInt8](repeating: 0, count: credential.method.saltLength)
        var random = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255, using: &random) }
        var sealer = try ChunkSealer(method: credential.method, key: credential.masterKey, salt: salt)
        var plaintext = ByteBuffer(bytes: [3, UInt8(name.utf8.count)] + Array(name.utf8))
        plaintext.writeInteger(port)
        plaintext.writeBytes(payload)
        var output = ByteBuffer()
        try sealer.seal(&plaintext, into: &output, now: 0)
        return output
    }

    @Test(
        "An authenticated request for a refused target is closed at once without a byte",
        arguments: [
            ("chat.example.org", 25, true), ("chat.example.org", 10025, true), ("example.org", 993, false),
            ("localhost", 993, false), ("127.0.0.1", 993, false),
        ])
    func refusedTarget(name: String, port: UInt16, portRefused: Bool) throws {
        let state = try Self.state()
        let channel = try Self.connection(state)
        try channel.writeInbound(try Self.request(to: name, port: port))
        #expect(!channel.isActive)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        let counters = state.counters
        #expect(counters.refusedPort == (portRefused ? 1 : 0) && counters.refusedHost == (portRefused ? 0 : 1))
        #expect(counters.failedHandshakes == 0 && counters.accepted == 0)
    }

    @Test("A replayed request stays silent until the deadline, also when its target is refused")
    func replayBeforePolicy() throws {
        let state = try Self.state()
        let request = try Self.request(to: "example.org", port: 993)
        let first = try Self.connection(state)
        try first.writeInbound(request)
        #expect(!first.isActive)
        let replay = try Self.connection(state)
        try replay.writeInbound(request)
        replay.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(replay.isActive)
        #expect(try replay.readOutbound(as: ByteBuffer.self) == nil)
        replay.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!replay.isActive)
        #expect(state.counters.replays == 1 && state.counters.refusedHost == 1)
    }

    @Test("A client that half-closes mid-handshake is kept until the deadline")
    func halfClose() throws {
        let channel = try Self.connection(try Self.state())
        try channel.writeInbound(ByteBuffer(bytes: [1, 2, 3]))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(!channel.isActive)
    }

    @Test("Beyond max_half_open, new connections are closed at once; closing frees their places")
    func halfOpenCap() throws {
        let state = try Self.state(maxHalfOpen: 2)
        let first = try Self.connection(state)
        let second = try Self.connection(state)
        let third = try Self.connection(state)
        #expect(first.isActive && second.isActive)
        #expect(!third.isActive)
        #expect(state.counters.overCapacity == 1)
        _ = try first.finish()
        let fourth = try Self.connection(state)
        #expect(fourth.isActive)
        _ = try second.finish()
        _ = try fourth.finish()
    }

    @Test("One source cannot take more than max_half_open_per_source places")
    func perSourceCap() throws {
        let state = try Self.state(maxHalfOpen: 10, perSource: 2)
        let a1 = try Self.connection(state, from: "192.0.2.1")
        let a2 = try Self.connection(state, from: "192.0.2.1")
        let a3 = try Self.connection(state, from: "192.0.2.1")
        let b1 = try Self.connection(state, from: "2001:db8::1")
        #expect(a1.isActive && a2.isActive && b1.isActive)
        #expect(!a3.isActive)
        _ = try a1.finish()
        let a4 = try Self.connection(state, from: "192.0.2.1")
        #expect(a4.isActive)
        for channel in [a2, a4, b1] { _ = try channel.finish() }
    }

    /// Issue 12.6: 41 addresses filled all 1024 places, and clients from fresh addresses were closed at once.
    @Test("41 busy addresses leave places for a newcomer")
    func fairShare() throws {
        let state = try Self.state(maxHalfOpen: 1024, perSource: 32)
        var channels: [EmbeddedChannel] = []
        for address in 0..<41 {
            for _ in 0..<40 { channels.append(try Self.connection(state, from: "10.0.\(address).1")) }
        }
        let held = channels.filter(\.isActive).count
        #expect(held < 1024 * 3 / 4, "\(held) places held by 41 addresses")
        let newcomers = try (1...5).map { try Self.connection(state, from: "198.51.100.\($0)") }
        #expect(newcomers.allSatisfy { $0.isActive })
        for channel in channels + newcomers where channel.isActive { _ = try channel.finish() }
    }
}
