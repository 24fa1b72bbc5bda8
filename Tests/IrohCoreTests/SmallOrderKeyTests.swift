import NIOCore
import Testing

@testable import IrohCore

/// Issue 12.5: a key of small order with R = the same point and S = 0 satisfies Ed25519's equation for every
/// message, so it must be refused on both handshakes.
@Suite struct SmallOrderKeyTests {
    static let identity = [1] + [UInt8](repeating: 0, count: 31)
    static let zero = [UInt8](repeating: 0, count: 32)

    /// ClientAuth (family W) claiming `key` with signature `r | s`.
    static func clientAuth(key: [UInt8], r: [UInt8], s: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: [1] + key + [0x40] + r + s)
    }

    /// ClientInfo (family L) claiming `key` with signature `r | s` over version 3, as a WebSocket message.
    static func clientInfo(key: [UInt8], r: [UInt8], s: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: [2] + LegacyProtocol.magic + key + r + s + [3])
    }

    @Test func clientAuthWithTheIdentityKeyIsDenied() {
        var session = RelaySession(family: .relay(.v2), challenge: Array(repeating: 9, count: 16))
        #expect(throws: RelayError.authenticationFailed("signature invalid")) {
            try session.receive(message: Self.clientAuth(key: Self.identity, r: Self.identity, s: Self.zero))
        }
        #expect(session.key == nil)
    }

    /// The all-zero key (order 4) passes the plain equation for about one challenge in four; twenty fixed challenges
    /// include such ones.
    @Test func clientAuthWithTheZeroKeyIsDeniedForEveryChallenge() {
        for byte in UInt8(0)..<20 {
            var session = RelaySession(family: .relay(.v1), challenge: Array(repeating: byte, count: 16))
            #expect(throws: RelayError.self, "challenge \(byte)") {
                try session.receive(message: Self.clientAuth(key: Self.zero, r: Self.zero, s: Self.zero))
            }
        }
    }

    @Test(arguments: [identity, zero])
    func clientInfoWithASmallOrderKeyIsRefused(key: [UInt8]) {
        var session = RelaySession(family: .legacy, challenge: [])
        #expect(throws: RelayError.authenticationFailed("signature invalid")) {
            try session.receive(message: Self.clientInfo(key: key, r: key, s: Self.zero))
        }
        #expect(session.key == nil)
    }
}
