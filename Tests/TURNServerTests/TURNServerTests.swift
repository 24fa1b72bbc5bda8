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
    static func configuration() -> Configuration {
        var configuration = try! Configuration.parse(
            """
            [turn]
            listen = "127.0.0.1:3478"
            host = "127.0.0.1"
            realm = "test"
            relay_ports = "40000-40999"
            [iroh]
            enabled = false
            """, path: "/tmp/turn-server-tests.conf")
        configuration.turn.listen.port = 0  // ephemeral, which the file format does not allow
        configuration.turn.tlsListen = ListenAddress(host: "127.0.0.1", port: 0)
        return configuration
    }

    static func withServer(_ body: (TURNServer, any EventLoopGroup) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await TURNServer.start(
            settings: try TURNSettings(configuration: configuration()), secrets: ["s"], tls: nil, group: group,
            logger: Logger(label: "test"))
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

    /// The settings of `text` under `[turn]` (iroh off), or the errors as "line key" strings.
    static func check(_ text: String) -> Result<TURNSettings, ConfigurationErrors> {
        Result { () throws(ConfigurationErrors) -> TURNSettings in
            try TURNSettings(
                configuration: Configuration.parse("[iroh]\nenabled = false\n[turn]\n" + text, path: "/tmp/t.conf"))
        }
    }

    @Test(
        "Settings: every rule the server relies on is checked up front, with line and key",
        arguments: [
            ("host = \"t.example\"\nallowed_peers = [\"10.0.0.0/33\"]", "5 [turn] allowed_peers"),
            ("host = \"t.example\"\ndenied_peers = [\"nonsense\"]", "5 [turn] denied_peers"),
            (
                "listen = \"0.0.0.0:3478\"\nhost = \"t.example\"\ntls_listen = \"turn.example:5349\"",
                "6 [turn] tls_listen"
            ),
            ("host = \"t.example\"\nrelay_addresses = [\"0.0.0.0\"]", "5 [turn] relay_addresses"),
            ("host = \"t.example\"\nrelay_addresses = []", "5 [turn] relay_addresses"),
            (
                "host = \"t.example\"\nrelay_addresses = [\"10.0.0.1\"]\nexternal_addresses = [\"0.0.0.0\"]",
                "6 [turn] external_addresses"
            ),
        ])
    func settingsRefused(text: String, expected: String) {
        guard case .failure(let error) = Self.check(text) else {
            Issue.record("accepted: \(text)")
            return
        }
        let found = error.errors.map { "\($0.line ?? 0) \($0.key ?? "")" }
        #expect(found.contains(expected), "\(found)")
        #expect(error.errors.allSatisfy { $0.file == "/tmp/t.conf" })
    }

    @Test("Settings: a wildcard relay address is advertised as external_addresses, else as an IP host")
    func relayAdvertised() throws {
        let external = try Self.check(
            "host = \"t.example\"\nrelay_addresses = [\"0.0.0.0\"]\nexternal_addresses = [\"203.0.113.7\"]"
        ).get()
        #expect(external.relay.relayBind[.ipv4]?.advertised == STUNAddress(host: "203.0.113.7", port: 0))
        let host = try Self.check("host = \"198.51.100.2\"\nrelay_addresses = [\"0.0.0.0\"]").get()
        #expect(host.relay.relayBind[.ipv4]?.advertised == STUNAddress(host: "198.51.100.2", port: 0))
    }
}
