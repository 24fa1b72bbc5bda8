import ChatmailTLS
import Foundation
import NIOCore
import NIOEmbedded
import Testing

/// Client and server handlers driven against each other in memory, as swift-nio-ssh tests its
/// state machines: bytes moved by hand, whole or one at a time.
@Suite struct OpenSSLHandlerTests {
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var events: [Any] = []
        var errors: [any Error] = []
        var received = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received.writeBuffer(&buffer)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { events.append(event) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
        var handshake: TLSHandshakeCompleted? { events.compactMap { $0 as? TLSHandshakeCompleted }.first }
    }

    static let identity: TLSIdentity = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID())").path
        return try! DevelopmentCertificate.ensure(in: directory, names: ["chat.example.org", "127.0.0.1"])
    }()

    struct Pair {
        let client: EmbeddedChannel
        let server: EmbeddedChannel
        let clientRecorder = Recorder()
        let serverRecorder = Recorder()
    }

    func makePair(alpn: [String] = ["http/1.1"], clientALPN: [String] = ["http/1.1"]) throws -> Pair {
        let serverContext = try TLSContext(server: [Self.identity], alpn: alpn)
        let clientContext = try TLSContext(
            client: true, trustedCertificates: Self.identity.certificatePath, alpn: clientALPN)
        let pair = Pair(client: EmbeddedChannel(), server: EmbeddedChannel())
        try pair.server.pipeline.syncOperations.addHandlers([
            try OpenSSLHandler(context: serverContext), pair.serverRecorder,
        ])
        try pair.client.pipeline.syncOperations.addHandlers([
            try OpenSSLHandler(context: clientContext, serverName: "chat.example.org"), pair.clientRecorder,
        ])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 993)
        try pair.server.connect(to: address).wait()
        try pair.client.connect(to: address).wait()
        return pair
    }

    /// Moves bytes both ways until neither side has anything to send.
    func exchange(_ pair: Pair, dripFeed: Bool = false) throws {
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(pair.client, pair.server), (pair.server, pair.client)] {
                while var data = try from.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    if dripFeed {
                        while let byte = data.readSlice(length: 1) { try to.writeInbound(byte) }
                    } else {
                        try to.writeInbound(data)
                    }
                }
            }
        }
    }

    @Test(arguments: [false, true])
    func handshakeAndDataBothWays(dripFeed: Bool) throws {
        let pair = try makePair()
        pair.client.writeAndFlush(ByteBuffer(string: "early"), promise: nil)
        try exchange(pair, dripFeed: dripFeed)
        #expect(pair.serverRecorder.handshake?.alpn == "http/1.1")
        #expect(pair.serverRecorder.handshake?.serverName == "chat.example.org")
        #expect(pair.serverRecorder.handshake?.version == "TLSv1.3")
        #expect(pair.clientRecorder.handshake != nil)
        #expect(pair.serverRecorder.received == ByteBuffer(string: "early"), "written during the handshake, sent after")
        let big = ByteBuffer(bytes: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        pair.server.writeAndFlush(big, promise: nil)
        try exchange(pair, dripFeed: false)
        #expect(pair.clientRecorder.received == big)
        #expect(pair.serverRecorder.errors.isEmpty && pair.clientRecorder.errors.isEmpty)
    }

    @Test func closeSendsCloseNotifyAndThePeerCloses() throws {
        let pair = try makePair()
        try exchange(pair)
        let closed = pair.client.close()
        try exchange(pair)
        #expect(throws: Never.self) { try closed.wait() }
        #expect(!pair.server.isActive, "close_notify received: the server closed too")
        #expect(pair.serverRecorder.errors.isEmpty)
    }

    @Test func garbageIsAHandshakeErrorAndCloses() throws {
        let pair = try makePair()
        try pair.server.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        #expect((pair.serverRecorder.errors.first as? TLSError)?.kind == .handshakeFailed)
        #expect(!pair.server.isActive)
    }

    @Test func noCommonALPNGoesOnWithout() throws {
        let pair = try makePair(alpn: ["imap"], clientALPN: ["h2"])
        try exchange(pair)
        #expect(pair.serverRecorder.handshake != nil && pair.serverRecorder.handshake?.alpn == nil)
    }

    @Test func writesAfterCloseFail() throws {
        let pair = try makePair()
        try exchange(pair)
        try pair.client.close().wait()
        #expect(throws: (any Error).self) { try pair.client.writeAndFlush(ByteBuffer(string: "x")).wait() }
    }

    @Test func developmentCertificateCoversItsNames() throws {
        let context = try TLSContext(server: [Self.identity])
        #expect(context.names == [["chat.example.org"]], "DNS names; the IP entry is not a DNS name")
        let text = try String(contentsOfFile: Self.identity.certificatePath, encoding: .utf8)
        #expect(text.hasPrefix("-----BEGIN CERTIFICATE-----"))
        let mode = try FileManager.default.attributesOfItem(atPath: Self.identity.keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let again = try DevelopmentCertificate.ensure(
            in: (Self.identity.certificatePath as NSString).deletingLastPathComponent, names: ["other"])
        #expect(try String(contentsOfFile: again.certificatePath, encoding: .utf8) == text, "kept, not remade")
    }

    @Test func brokenIdentitiesAreClearErrors() throws {
        let missing = TLSIdentity(certificatePath: "/nonexistent.pem", keyPath: "/nonexistent.key")
        #expect {
            try TLSContext(server: [missing])
        } throws: { error in
            (error as? TLSError)?.kind == .configuration && "\(error)".contains("/nonexistent.pem")
        }
        #expect(throws: TLSError.self) { try TLSContext(server: []) }
        let wrongKey = TLSIdentity(
            certificatePath: Self.identity.certificatePath, keyPath: Self.identity.certificatePath)
        #expect(throws: TLSError.self) { try TLSContext(server: [wrongKey]) }
    }
}
