import ChatmailControl
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite struct LineFrameDecoderTests {
    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func splitsLinesAndSurvivesADripFeed() throws {
        let input = buffer("{\"id\":1}\n\n{\"id\":2,\"type\":\"x\"}\n")
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input, [buffer("{\"id\":1}"), buffer(""), buffer("{\"id\":2,\"type\":\"x\"}")])],
            decoderFactory: { LineFrameDecoder() })
    }

    @Test func overlongLineIsAnError() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLength: 8)))
        #expect(throws: LineFrameDecoder.LineTooLong.self) { try channel.writeInbound(self.buffer("123456789")) }
        let other = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLength: 8)))
        #expect(throws: LineFrameDecoder.LineTooLong.self) { try other.writeInbound(self.buffer("0123456789\n")) }
    }

    @Test func unterminatedLastLineIsDropped() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder()))
        try channel.writeInbound(buffer("a\nb"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == buffer("a"))
        _ = try channel.finish()
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
    }
}
