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

    @Test func readsVersion1AsNginxSendsIt() {
        // proxy-protocol.txt §2.1; nginx's `proxy_protocol on` sends exactly this form.
        let cases: [(String, ProxyHeader)] = [
            ("PROXY TCP4 127.0.0.9 127.0.0.1 40000 443\r\n", Self.v4),
            (
                "PROXY TCP6 2001:db8::1 ::1 1 993\r\n",
                ProxyHeader(
                    source: .init(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 1),
                    destination: .init(ip: [UInt8](repeating: 0, count: 15) + [1], port: 993))
            ),
            ("PROXY UNKNOWN\r\n", ProxyHeader(source: nil, destination: nil)),
            ("PROXY UNKNOWN ffff:f...f:ffff 65535 65535\r\n", ProxyHeader(source: nil, destination: nil)),
        ]
        for (line, header) in cases {
            let bytes = Array(line.utf8) + [22, 3, 1]
            for cut in 0...bytes.count {
                var reader = ProxyHeader.Reader()
                var result = reader.feed(bytes[..<cut])
                if cut < line.utf8.count {
                    #expect(result == .needMore, "\(line) cut at \(cut)")
                    result = reader.feed(bytes[cut...])
                }
                #expect(result == .header(header, length: line.utf8.count), "\(line)")
            }
        }
        // The longest line allowed is 107 bytes, CRLF included.
        let longest = "PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n"
        var reader = ProxyHeader.Reader()
        #expect(reader.feed(Array(longest.utf8)) == .header(ProxyHeader(source: nil, destination: nil), length: 107))
    }

    @Test func malformed() {
        let cases: [(String, [UInt8])] = [
            ("plain TLS", [22, 3, 1, 0, 5]),
            ("v1 without CRLF", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8)),
            ("v1 with a v6 address for TCP4", Array("PROXY TCP4 ::1 5.6.7.8 1 2\r\n".utf8)),
            ("v1 with a v4 address for TCP6", Array("PROXY TCP6 1.2.3.4 ::1 1 2\r\n".utf8)),
            ("v1 UDP", Array("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
            ("v1 port out of range", Array("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".utf8)),
            ("v1 port with a leading zero", Array("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n".utf8)),
            ("v1 negative port", Array("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n".utf8)),
            ("v1 double space", Array("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n".utf8)),
            ("v1 missing port", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8)),
            ("v1 over 107 bytes", Array(("PROXY UNKNOWN " + String(repeating: "x", count: 100)).utf8)),
            ("v1 lower case", Array("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
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
