import ChatmailConfig
import Logging
import NIOCore
import NIOPosix
import TURNCore
import Testing

@testable import TURNServer

/// The NIO layer in-process on loopback (port 0): listeners, framing, replies from the right address.
/// The protocol itself is tested in TURNCoreTests and against real clients in Tests/integration/test_turn.py.
@Suite("TURN server")
struct TURNServerTests {
    static func section() -> TURNSection {
        var section = try! Configuration.parse(
            """
            [turn]
            listen = "127.0.0.1:3478"
            host = "127.0.0.1"
            realm = "test"
            relay_ports = "40000-40999"
            [iroh]
            enabled = false
            """, path: "/tmp/turn-server-tests.conf"
        ).turn
        section.listen.port = 0  // ephemeral, which the file format does not allow
        section.tlsListen = ListenAddress(host: "127.0.0.1", port: 0)
        return section
    }

    static func withServer(_ body: (TURNServer, any EventLoopGroup) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await TURNServer.start(
            configuration: section(), secrets: ["s"], tls: nil, group: group, logger: Logger(label: "test"))
        do {
            try await body(server, group)
        } catch {
            await server.shutdown()
            try await group.shutdownGracefully()
            throw error
        }
        await server.shutdown()
        try await group.shutdownGracefully()
    }

    /// Collects what a client channel receives.
    final class Collector<Message: Sendable>: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = Message
        let stream: AsyncStream<Message>
        private let continuation: AsyncStream<Message>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream() }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
    }

    @Test("Binding over UDP: answered from the listener's address with the client's address")
    func udpBinding() async throws {
        try await Self.withServer { server, group in
            let collector = Collector<AddressedEnvelope<ByteBuffer>>()
            let client = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let request = STUNMessage(type: .bindingRequest, transactionID: .random())
            let target = server.udpAddresses[0]
            try await client.writeAndFlush(
                AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: try request.encoded())))
            var iterator = collector.stream.makeAsyncIterator()
            let answer = try #require(await iterator.next())
            #expect(answer.remoteAddress == target)
            let message = try STUNMessage(parsing: Array(answer.data.readableBytesView))
            #expect(message.type == .bindingSuccess && message.transactionID == request.transactionID)
            #expect(message.xorMappedAddress == STUNAddress(client.localAddress!))
            try await client.close()
        }
    }

    @Test("TCP: frames split across segments are reassembled; a non-TURN stream is closed")
    func tcpFraming() async throws {
        try await Self.withServer { server, group in
            let collector = Collector<ByteBuffer>()
            let client = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(to: server.tcpAddresses[0]).get()
            let request = try STUNMessage(type: .bindingRequest, transactionID: .random()).encoded(fingerprint: true)
            try await client.writeAndFlush(ByteBuffer(bytes: request.prefix(7)))
            try await Task.sleep(for: .milliseconds(50))
            try await client.writeAndFlush(ByteBuffer(bytes: request.dropFirst(7)))
            var iterator = collector.stream.makeAsyncIterator()
            var received = ByteBuffer()
            while received.readableBytes < 40, var part = await iterator.next() { received.writeBuffer(&part) }
            let message = try STUNMessage(parsing: Array(received.readableBytesView))
            #expect(message.xorMappedAddress == STUNAddress(client.localAddress!))
            #expect(STUNMessage.verifyFingerprint(Array(received.readableBytesView)))
            // Top bits 11: not STUN, not ChannelData.
            try await client.writeAndFlush(ByteBuffer(bytes: [0xC0, 0, 0, 0]))
            while await iterator.next() != nil {}  // ends when the server closes
            #expect(!client.isActive)
        }
    }

    @Test("configuration errors: bad peer ranges, a wildcard relay address with nothing to advertise")
    func configurationErrors() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var section = Self.section()
        section.allowedPeers = ["10.0.0.0/33"]
        await #expect(throws: TURNServerError.self) {
            try await TURNServer.start(
                configuration: section, secrets: [], tls: nil, group: group, logger: Logger(label: "test"))
        }
        section = Self.section()
        section.relayAddresses = ["0.0.0.0"]
        section.host = "turn.example.org"
        #expect(throws: TURNServerError.self) { try TURNServer.relaySettings(section) }
        section.externalAddresses = ["203.0.113.7"]
        let settings = try TURNServer.relaySettings(section)
        #expect(settings.relayBind[.ipv4]?.advertised == STUNAddress(host: "203.0.113.7", port: 0))
        try await group.shutdownGracefully()
    }
}
