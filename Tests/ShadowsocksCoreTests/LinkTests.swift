import Testing

@testable import ShadowsocksCore

@Suite("SIP002 links")
struct LinkTests {
    @Test("2022 links: plain method and percent-encoded PSK, as the SIP002 example")
    func link2022() {
        let credential = ShadowsocksCredential(
            method: .blake3AES256GCM, keyText: "YctPZ6U7xPPcU+gp3u+0tx/tRizJN9K8y+uKlW2qjlI=")!
        #expect(
            credential.link(host: "192.168.100.1", port: 8888, tag: "Example3")
                == "ss://2022-blake3-aes-256-gcm:YctPZ6U7xPPcU%2Bgp3u%2B0tx%2FtRizJN9K8y%2BuKlW2qjlI%3D@192.168.100.1:8888#Example3"
        )
    }

    @Test("SIP004 links: base64url without padding of method:password; IPv6 in brackets; encoded tag")
    func link2017() {
        let credential = ShadowsocksCredential(method: .aes256GCM, keyText: "test/openpass?")!
        // base64url("aes-256-gcm:test/openpass?") without padding.
        #expect(
            credential.link(host: "chat.example.org", port: 8388, tag: "chat example")
                == "ss://YWVzLTI1Ni1nY206dGVzdC9vcGVucGFzcz8@chat.example.org:8388#chat%20example")
        #expect(credential.link(host: "2001:db8::1", port: 443).hasSuffix("@[2001:db8::1]:443"))
    }
}
