import Logging
import NIOCore
import NIOEmbedded
import TURNCore
import Testing

@testable import TURNServer

/// The TCP and TLS client handler's deadlines and its output bound, on an embedded loop with time advanced by hand.
@Suite("TURN stream client deadlines")
struct StreamDeadlineTests {
    /// Counts the reads that get past the handler (towards the socket).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    let loop = EmbeddedEventLoop()
    let deadlines = StreamDeadlines(
        firstMessage: .seconds(1), unallocated: .seconds(50), unwritable: .seconds(5), idle: .seconds(100))
    let state: LoopState

    init() {
        let engine = TURNEngine(
            settings: TURNEngineSettings(realm: "test"),
            authenticator: RESTAuthenticator(secrets: ["s"], realm: "test"),
            policy: PeerPolicy(), nonces: NonceAuthority(key: [1]),
            shared: LockedTURNSharedState(quotas: AllocationQuotas()))
        state = LoopState(
            eventLoop: loop, engine: engine,
            relaySettings: RelaySettings(
                relayBind: [.ipv4: (STUNAddress("127.0.0.1:0")!, STUNAddress("127.0.0.1:0")!)],
                relayPorts: 40000...40999),
            reservations: RelayReservations(), hairpin: HairpinRegistry(), logger: Logger(label: "test"))
    }

    func connect(counter: ReadCounter = ReadCounter()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handlers: [
                counter, BackPressureHandler(), StreamClientHandler(state: state, transport: .tcp, deadlines: deadlines),
            ], loop: loop)
        channel.localAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 3478)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50000)).wait()
        return channel
    }

    func binding() throws -> ByteBuffer {
        ByteBuffer(bytes: try STUNMessage(type: .bindingRequest, transactionID: .random()).encoded())
    }

    @Test("a connection that sends nothing is closed after the handshake deadline")
    func silent() throws {
        let channel = try connect()
        loop.advanceTime(by: .milliseconds(900))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(100))
        #expect(!channel.isActive)
    }

    @Test("a connection without an allocation is closed after its deadline, answered until then")
    func unallocated() throws {
        let channel = try connect()
        try channel.writeInbound(try binding())
        #expect(try channel.readOutbound(as: ByteBuffer.self) != nil)
        loop.advanceTime(by: .seconds(49))
        #expect(channel.isActive, "the first message came in time")
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("while the connection is not writable nothing is read; unwritable for the deadline, it is closed")
    func readsNothing() throws {
        let counter = ReadCounter()
        let channel = try connect(counter: counter)
        try channel.writeInbound(try binding())
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        #expect(counter.reads == 1, "held while not writable")
        loop.advanceTime(by: .seconds(3))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2, "the held read, once writable")
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        loop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "the deadline counts from becoming unwritable")
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }
}
