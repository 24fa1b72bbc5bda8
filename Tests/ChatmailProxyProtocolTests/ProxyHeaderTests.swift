import Testing

@testable import ChatmailProxyProtocol

@Suite struct ProxyHeaderTests {
    static let v4 = ProxyHeader(
        source: .init(ip: [127, 0, 0, 9], port: 40000), destination: .init(ip: [127, 0, 0, 1], port: 443))

    @Test func encodesIPv4AsHAProxyDoes() {
        // proxy-protocol.txt §2.2: signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), length 12, addresses, ports.
        #expect(
            Self.v4.encoded
                == ProxyHeader.signature + [0x21, 0x11, 0, 12, 127, 0, 0, 9, 127, 0, 0, 1, 0x9C, 0x40, 0x01, 0xBB])
        let local = ProxyHeader(source: nil, destination: nil).encoded
        #expect(local == ProxyHeader.signature + [0x20, 0, 0, 0])
    }

    @Test func roundTripsInAnyPieces() {
        let v6 = ProxyHeader(
            source: .init(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 1),
            destination: .init(ip: [UInt8](repeating: 0, count: 15) + [1], port: 993))
        #expect(v6.source?.ipText == "2001:db8:0:0:0:0:0:1")
        #expect(Self.v4.source?.ipText == "127.0.0.9")
        for header in [Self.v4, v6, ProxyHeader(source: nil, destination: nil)] {
            let bytes = header.encoded + Array("after".utf8)
            for cut in 0...bytes.count {
                var reader = ProxyHeader.Reader()
                var result = reader.feed(bytes[..<cut])
                if cut < header.encoded.count {
                    #expect(result == .needMore)
                    result = reader.feed(bytes[cut...])
                }
                #expect(result == .header(header, length: header.encoded.count))
            }
        }
    }

    @Test func tlvsAreSkipped() {
        var bytes = Self.v4.encoded
        bytes[15] = 12 + 7
        bytes += [0x04, 0, 4, 1, 2, 3, 4]  // PP2_TYPE_NOOP
        var reader = ProxyHeader.Reader()
        #expect(reader.feed(bytes) == .header(Self.v4, length: bytes.count))
    }

    @Test func malformed() {
        let cases: [(String, [UInt8])] = [
            ("plain TLS", [22, 3, 1, 0, 5]),
            ("PROXY v1", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
            (
                "version 1 in the v2 format",
                ProxyHeader.signature + [0x11, 0x11, 0, 12] + [UInt8](repeating: 0, count: 12)
            ),
            ("UDP", ProxyHeader.signature + [0x21, 0x12, 0, 12] + [UInt8](repeating: 0, count: 12)),
            ("short addresses", ProxyHeader.signature + [0x21, 0x11, 0, 4, 1, 2, 3, 4]),
            ("too long", ProxyHeader.signature + [0x21, 0x11, 0xFF, 0xFF]),
            ("unknown command", ProxyHeader.signature + [0x22, 0x11, 0, 0]),
        ]
        for (name, bytes) in cases {
            var reader = ProxyHeader.Reader()
            guard case .malformed = reader.feed(bytes) else {
                Issue.record("\(name) accepted")
                continue
            }
        }
        // A wrong first byte is refused at once, before 16 bytes.
        var reader = ProxyHeader.Reader()
        guard case .malformed = reader.feed([0x16]) else { Issue.record("waited on a TLS byte"); return }
    }
}
