import ChatmailControl
import ChatmailCrypto
import Foundation
import Testing

/// Vectors from ../shared/notes/madmail-and-peers.md §1.2.
@Suite struct TURNCredentialTests {
    @Test func madmailVector() {
        let credential = TURNCredential(secret: "test-secret", now: 1_758_564_468, ttl: 86400)
        #expect(credential.username == "1758650868")
        #expect(credential.password == "nkfvRIGUcx0N/jq/StNLPajpLZE=")
        #expect(
            credential.discoveryValue(host: "example.com", port: 3478)
                == "example.com:3478:1758650868:nkfvRIGUcx0N/jq/StNLPajpLZE=")
    }

    /// `turns` carries the same credential on the TLS port; `preferTLS` switches `turn` to it, and only when there
    /// is a TLS port.
    @Test func turnsDiscoveryValues() {
        let credential = TURNCredential(secret: "test-secret", now: 1_758_564_468, ttl: 86400)
        let plain = "example.com:3478:1758650868:nkfvRIGUcx0N/jq/StNLPajpLZE="
        let tls = "example.com:5349:1758650868:nkfvRIGUcx0N/jq/StNLPajpLZE="
        let both = credential.discoveryValues(host: "example.com", port: 3478, tlsPort: 5349, preferTLS: false)
        #expect(both.turn == plain && both.turns == tls)
        let preferred = credential.discoveryValues(host: "example.com", port: 3478, tlsPort: 5349, preferTLS: true)
        #expect(preferred.turn == tls && preferred.turns == tls)
        let noTLS = credential.discoveryValues(host: "example.com", port: 3478, tlsPort: nil, preferTLS: true)
        #expect(noTLS.turn == plain && noTLS.turns == nil)
        // The password verifies against the secret for the username in the value.
        let parts = tls.split(separator: ":").map(String.init)
        #expect(TURNCredential(secret: "test-secret", username: parts[2]).password == parts[3])
    }

    @Test func webrtcRsVector() {
        #expect(TURNCredential(secret: "foobar", username: "1599491771").password == "Tpz/nKkyvX/vMSLKvL4sbtBt8Vs=")
    }

    /// RFC 2202 test cases 1 and 2 for HMAC-SHA1.
    @Test func hmacSHA1RFC2202() {
        let one = Crypto.hmacSHA1(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(one.map { String(format: "%02x", $0) }.joined() == "b617318655057264e28bc0b6fb378c8ef146be00")
        let two = Crypto.hmacSHA1(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(two.map { String(format: "%02x", $0) }.joined() == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    }

    @Test func randomBytesDiffer() {
        #expect(Crypto.randomBytes(32).count == 32)
        #expect(Crypto.randomBytes(32) != Crypto.randomBytes(32))
        #expect(Crypto.base64URL([0xfb, 0xff, 0xfe]) == "-__-")
    }
}
