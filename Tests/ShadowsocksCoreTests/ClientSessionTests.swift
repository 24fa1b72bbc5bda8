import NIOCore
import Testing

@testable import ShadowsocksCore

/// The client side (chatmailctl doctor) against the server's handshake and response sealer.
@Suite("Client session")
struct ClientSessionTests {
    @Test(
        "a request opens on the server side and the response opens on the client side",
        arguments: ShadowsocksMethod.allCases)
    func roundTrip(method: ShadowsocksMethod) throws {
        let credential = try #require(ShadowsocksCredential(method: method, keyText: method.generateKeyText()))
        let target = TargetAddress(host: .name(Array("chat.example.org".utf8)), port: 993)
        var (session, request) = try ClientSession.start(credential: credential, target: target, now: 1_000_000)
        var payload = ByteBuffer(string: "a1 NOOP\r\n")
        try session.sealer.seal(&payload, into: &request, now: 1_000_000)

        var server = ServerHandshake(credential: credential)
        guard case .accepted(var accepted) = server.receive(&request, now: 1_000_001) else {
            Issue.record("the server refused the request")
            return
        }
        #expect(accepted.target == target)
        #expect(accepted.salt == session.salt)
        var plain = accepted.initialPayload
        try accepted.opener.open(from: &request, into: &plain)
        #expect(String(buffer: plain) == "a1 NOOP\r\n")

        var response = ByteBuffer()
        var sealer = try ChunkSealer(
            method: method, key: credential.masterKey, salt: [UInt8](repeating: 7, count: method.saltLength),
            requestSalt: accepted.salt)
        var greeting = ByteBuffer(string: "* OK ready\r\n")
        try sealer.seal(&greeting, into: &response, now: 1_000_001)
        var opened = ByteBuffer()
        // Byte by byte: partial pieces wait for the rest.
        var input = ByteBuffer()
        for byte in response.readableBytesView {
            input.writeInteger(byte)
            try session.receive(&input, into: &opened)
        }
        #expect(String(buffer: opened) == "* OK ready\r\n")
    }

    @Test("a 2022 response for another request is refused")
    func otherRequestSalt() throws {
        let method = ShadowsocksMethod.blake3AES256GCM
        let credential = try #require(ShadowsocksCredential(method: method, keyText: method.generateKeyText()))
        var (session, _) = try ClientSession.start(
            credential: credential, target: TargetAddress(host: .name(Array("a".utf8)), port: 993), now: 1)
        var sealer = try ChunkSealer(
            method: method, key: credential.masterKey, salt: [UInt8](repeating: 7, count: method.saltLength),
            requestSalt: [UInt8](repeating: 1, count: method.saltLength))
        var response = ByteBuffer()
        var greeting = ByteBuffer(string: "* OK\r\n")
        try sealer.seal(&greeting, into: &response, now: 1)
        var opened = ByteBuffer()
        #expect(throws: ShadowsocksError.header) { try session.receive(&response, into: &opened) }
    }
}
