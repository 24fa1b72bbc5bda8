import ChatmailConfig
import ChatmailCrypto
import IrohCore
import Logging
import NIOCore
import NIOEmbedded
import NIOTestUtils
import NIOWebSocket
import Testing

@testable import IrohServer

/// The relay handlers on an EmbeddedChannel, with virtual time for the timers.
@Suite struct HandlerTests {
    static let seed = [UInt8](repeating: 0x2a, count: 32)

    /// A family-W connection on `channel`, authenticated with the vectors' key.
    func authenticatedRelayChannel(version: RelayProtocol.Version = .v2, limits: IrohLimits = IrohLimits()) throws
        -> (EmbeddedChannel, RelayHub)
    {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let hub = RelayHub(eventLoop: channel.embeddedEventLoop, limits: limits, logger: Logger(label: "test"))
        let handler = RelayConnectionHandler(
            family: .relay(version), streamHeader: false, hub: hub, logger: hub.logger)
        try channel.pipeline.syncOperations.addHandler(handler)
        var challenge = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(challenge.readInteger(as: UInt8.self) == 0)
        let signature = try Crypto.ed25519Sign(
            privateKey: Self.seed,
            message: RelayProtocol.challengeMessage(challenge.readBytes(length: challenge.readableBytes)!))
        let key = try Crypto.ed25519PublicKey(privateKey: Self.seed)
        try channel.writeInbound(RelayInbound.message(ByteBuffer(bytes: [1] + key + [64] + signature)))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [2]))
        #expect(hub.counters.relaySessions == 1)
        return (channel, hub)
    }

    @Test func serverPingsAfterIdleAndClosesWithoutPong() throws {
        let (channel, _) = try authenticatedRelayChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(14))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))  // pinged at 15 s idle
        var ping = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(ping.readInteger(as: UInt8.self) == 9 && ping.readableBytes == 8)
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "still within the 5 s pong timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "no pong within 5 s")
    }

    @Test func aPongKeepsTheConnectionAndReadsResetTheInterval() throws {
        let (channel, _) = try authenticatedRelayChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        try channel.writeInbound(RelayInbound.message(ByteBuffer(bytes: [9, 1, 2, 3, 4, 5, 6, 7, 8])))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [10, 1, 2, 3, 4, 5, 6, 7, 8]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))  // 16 s since auth, 6 s since the last read
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        // The next ping comes 15 s + 1–5 s of jitter after the last read: by 30 s.
        channel.embeddedEventLoop.advanceTime(by: .seconds(14))
        var ping = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(ping.readInteger(as: UInt8.self) == 9)
        try channel.writeInbound(RelayInbound.message(ByteBuffer(bytes: [10] + ping.readBytes(length: 8)!)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive)
    }

    @Test func pongsGoAheadOfQueuedPacketsAndTheQueueIsBounded() throws {
        var limits = IrohLimits()
        limits.queueSize = 3
        let (channel, _) = try authenticatedRelayChannel(limits: limits)
        let handler = try channel.pipeline.syncOperations.handler(type: RelayConnectionHandler.self)
        let source = EndpointKey([UInt8](repeating: 7, count: 32))!
        func packet(_ byte: UInt8) -> ServerMessage {
            .packet(source: source, .datagrams(.init(ecn: 0, segmentSize: nil, contents: ByteBuffer(bytes: [byte]))))
        }
        channel.isWritable = false
        #expect([1, 2, 3, 4].map { handler.deliver(packet($0)) } == [true, true, true, false])
        try channel.writeInbound(RelayInbound.message(ByteBuffer(bytes: [9, 1, 2, 3, 4, 5, 6, 7, 8])))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing is written while unwritable")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        var types: [UInt8] = []
        while let frame = try channel.readOutbound(as: ByteBuffer.self) { types.append(frame.getInteger(at: 0)!) }
        #expect(types == [10, 6, 6, 6], "the pong first, then the three packets the queue held")
    }

    @Test func aClientThatStopsReadingHitsTheWriteTimeout() throws {
        let (channel, hub) = try authenticatedRelayChannel()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1900))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)
        #expect(hub.counters.limitClosures == 1)
    }

    @Test func closingUnregisters() throws {
        let (channel, hub) = try authenticatedRelayChannel()
        _ = try channel.finish()
        #expect(hub.counters.relaySessions == 0)
    }

    @Test func webSocketMessagesAreReassembledAndControlFramesAnswered() throws {
        let channel = EmbeddedChannel(handler: WebSocketMessageHandler(maxMessageSize: 8))
        func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
            WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(bytes: bytes))
        }
        try channel.writeInbound(frame(.binary, [1, 2], fin: false))
        try channel.writeInbound(frame(.ping, [7]))  // control frames may interleave
        try channel.writeInbound(frame(.continuation, [3]))
        guard case .message(let message) = try #require(try channel.readInbound(as: RelayInbound.self)) else {
            Issue.record("not a message")
            return
        }
        #expect(message == ByteBuffer(bytes: [1, 2, 3]))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong && pong.data == ByteBuffer(bytes: [7]) && pong.maskKey == nil)
        try channel.writeInbound(frame(.text, [65], fin: false))
        try channel.writeInbound(frame(.continuation, [66]))
        #expect(try channel.readInbound(as: RelayInbound.self) == nil, "text is skipped")
        try channel.writeOutbound(ByteBuffer(bytes: [9]))
        let out = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(out.opcode == .binary && out.fin && out.data == ByteBuffer(bytes: [9]))
        try channel.writeInbound(frame(.binary, [1, 2, 3, 4, 5], fin: false))
        #expect(throws: WebSocketMessageHandler.MessageError.tooLarge) {
            try channel.writeInbound(frame(.continuation, [6, 7, 8, 9]))
        }
    }

    @Test func fastUnmaskingAgreesWithNIO() {
        var random = SystemRandomNumberGenerator()
        for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 100, 1237] {
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let key = WebSocketMaskingKey.random(using: &random)
            var masked = ByteBuffer(bytes: payload)
            masked.webSocketMask(key)
            let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: masked)
            #expect(WebSocketMessageHandler.unmasked(frame) == ByteBuffer(bytes: payload), "length \(length)")
            #expect(WebSocketMessageHandler.unmasked(frame) == frame.unmaskedData)
        }
    }

    @Test func legacyStreamDecoderHandlesAnySplit() throws {
        var stream = ByteBuffer(bytes: [12, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 6, 0, 0, 0, 0])
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LegacyStreamDecoder(maxFrameSize: 64)))
        // Byte by byte, the same two frames come out.
        while let byte = stream.readSlice(length: 1) { try channel.writeInbound(byte) }
        var types: [UInt8] = []
        while let frame = try channel.readInbound(as: RelayInbound.self) {
            if case .legacyFrame(let type, _) = frame { types.append(type) }
        }
        #expect(types == [12, 6])
        #expect(throws: RelayError.frameTooLarge(65)) {
            try channel.writeInbound(ByteBuffer(bytes: [4, 0, 0, 0, 65]))
        }
    }
}

/// Counts the reads that reach the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite struct OutputBoundTests {
    /// Issue 12.1: a client that does not read its answers is not read from while they pile up. The relay's
    /// pipeline relies on NIO's `BackPressureHandler` for it: this pins the behaviour it relies on.
    @Test func readsWaitWhileTheChannelIsNotWritable() throws {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(counter, BackPressureHandler())
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(counter.reads == 1, "held while not writable")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2, "one read once writable again")
        channel.read()
        #expect(counter.reads == 3)
        _ = try channel.finish()
    }
}
