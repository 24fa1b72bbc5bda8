import Testing

@testable import FrontCore

@Suite struct ClientHelloReaderTests {
    static let captures: [(name: String, bytes: [UInt8], alpn: [String])] = [
        ("openssl imap", Captured.opensslIMAP, ["imap"]),
        ("openssl smtp", Captured.opensslSMTP, ["smtp"]),
        ("openssl TLS 1.2", Captured.opensslTLS12, []),
        ("curl", Captured.curl, ["h2", "http/1.1"]),
        ("Delta Chat", Captured.deltaChatIMAP, ["imap"]),
    ]

    static func read(_ pieces: [ArraySlice<UInt8>], reader: ClientHelloReader = ClientHelloReader())
        -> ClientHelloReader.Result
    {
        var reader = reader
        var result = ClientHelloReader.Result.needMore
        for piece in pieces { result = reader.feed(piece) }
        return result
    }

    /// A ClientHello (TLS 1.2 layout) with these extensions, in records of at most `recordSize` bytes.
    static func hello(extensions: [(type: UInt16, data: [UInt8])], recordSize: Int = 1 << 14) -> [UInt8] {
        func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        let encoded = extensions.flatMap { u16(Int($0.type)) + u16($0.data.count) + $0.data }
        let body: [UInt8] =
            [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + u16(2) + [0x13, 0x01] + [1, 0] + u16(encoded.count)
            + encoded
        let message = [1, UInt8(body.count >> 16), UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)] + body
        return stride(from: 0, to: message.count, by: recordSize).flatMap { start in
            let fragment = message[start..<min(start + recordSize, message.count)]
            return [22, 3, 1] + u16(fragment.count) + fragment
        }
    }

    static func alpn(_ names: [String]) -> (type: UInt16, data: [UInt8]) {
        let list = names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return (16, [UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list)
    }

    @Test(arguments: 0..<5) func capturedHellosGiveTheirALPN(index: Int) {
        let capture = Self.captures[index]
        #expect(Self.read([capture.bytes[...]]) == .alpn(capture.alpn), "\(capture.name)")
    }

    @Test(arguments: 0..<5) func cutAtEveryOffsetWaitsAndSplitAnywhereGivesTheSame(index: Int) {
        let capture = Self.captures[index]
        let bytes = capture.bytes
        for cut in 0..<bytes.count {
            #expect(Self.read([bytes[..<cut]]) == .needMore, "\(capture.name) cut at \(cut)")
            #expect(Self.read([bytes[..<cut], bytes[cut...]]) == .alpn(capture.alpn), "\(capture.name) split \(cut)")
        }
        // One byte per read.
        #expect(Self.read(bytes.indices.map { bytes[$0...$0] }) == .alpn(capture.alpn))
    }

    @Test func manyReadsOfRandomSizes() {
        var random = SystemRandomNumberGenerator()
        for capture in Self.captures {
            for _ in 0..<50 {
                var pieces: [ArraySlice<UInt8>] = []
                var start = 0
                while start < capture.bytes.count {
                    let end = min(capture.bytes.count, start + Int.random(in: 0...40, using: &random))
                    pieces.append(capture.bytes[start..<end])
                    start = end
                }
                #expect(Self.read(pieces) == .alpn(capture.alpn))
            }
        }
    }

    @Test func sixteenKilobytesOfExtensionsSpanTwoRecords() {
        let bytes = Self.hello(extensions: [(21, [UInt8](repeating: 0, count: 16 << 10)), Self.alpn(["imap"])])
        #expect(bytes.count > (16 << 10) + 10)
        #expect(Self.read([bytes[...]]) == .alpn(["imap"]))
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            #expect(Self.read([bytes[..<cut], bytes[cut...]]) == .alpn(["imap"]))
        }
        // The same in small records.
        #expect(Self.read([Self.hello(extensions: [Self.alpn(["smtp"])], recordSize: 7)[...]]) == .alpn(["smtp"]))
    }

    @Test func bounds() {
        // A ClientHello longer than the cap is refused as soon as its length is read.
        let big = Self.hello(extensions: [(21, [UInt8](repeating: 0, count: 40 << 10))])
        guard case .malformed = Self.read([big.prefix(9)]) else { Issue.record("long hello accepted"); return }
        // Records of one byte each: the total is capped although each record is fine.
        let tiny = Self.hello(extensions: [(21, [UInt8](repeating: 0, count: 20 << 10))], recordSize: 1)
        var reader = ClientHelloReader()
        var fed = 0
        var result = ClientHelloReader.Result.needMore
        for start in stride(from: 0, to: tiny.count, by: 512) where result == .needMore {
            result = reader.feed(tiny[start..<min(start + 512, tiny.count)])
            fed = min(start + 512, tiny.count)
        }
        guard case .malformed = result else { Issue.record("no cap on total bytes: \(result)"); return }
        #expect(fed <= reader.maxBytes + 512)
        // A record longer than TLS allows, and an empty one.
        #expect(Self.read([[22, 3, 1, 0x40, 0x01][...]]) == .malformed("record of 16385 bytes"))
        #expect(Self.read([[22, 3, 1, 0, 0][...]]) == .malformed("empty handshake record"))
    }

    @Test func duplicateExtensionsAreMalformed() {
        let twice = Self.hello(extensions: [Self.alpn(["imap"]), Self.alpn(["smtp"])])
        #expect(Self.read([twice[...]]) == .malformed("duplicate extension 16"))
        let other = Self.hello(extensions: [(0, []), Self.alpn(["imap"]), (0, [])])
        #expect(Self.read([other[...]]) == .malformed("duplicate extension 0"))
    }

    @Test func garbage() {
        let cases: [(String, [UInt8])] = [
            ("plain HTTP", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("SSLv2 hello", [0x80, 0x2E, 0x01, 0x03, 0x01]),
            ("alert record", [21, 3, 3, 0, 2, 2, 40]),
            ("not a ClientHello", [22, 3, 3, 0, 4, 2, 0, 0, 0]),
            ("empty ALPN list", Self.hello(extensions: [(16, [0, 0])])),
            ("empty ALPN name", Self.hello(extensions: [(16, [0, 1, 0])])),
            ("ALPN list longer than its extension", Self.hello(extensions: [(16, [0, 9, 4] + Array("imap".utf8))])),
            (
                "session id of 33 bytes",
                [22, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3] + [UInt8](repeating: 0, count: 32) + [33, 0]
            ),
        ]
        for (name, bytes) in cases {
            guard case .malformed = Self.read([bytes[...]]) else {
                Issue.record("\(name) not malformed")
                continue
            }
        }
        // A body whose declared parts run past its end.
        var cut = Self.hello(extensions: [Self.alpn(["imap"])])
        cut[8] = UInt8(cut.count - 9 - 3)  // the ClientHello length, shortened by three bytes (one record)
        cut[4] = UInt8(cut.count - 5 - 3)
        guard case .malformed = Self.read([cut.dropLast(3)]) else { Issue.record("cut body accepted"); return }
    }

    @Test func resultStays() {
        var reader = ClientHelloReader()
        let bytes = Captured.opensslIMAP
        #expect(reader.feed(bytes) == .alpn(["imap"]))
        #expect(reader.feed(Array("more".utf8)) == .alpn(["imap"]))
        #expect(reader.result == .alpn(["imap"]))
    }

    /// Random and mutated input, bounded in count: never a crash, and the result does not depend on how the
    /// bytes were split.
    @Test func fuzz() {
        var random = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 3 == 0 {
                bytes = (0..<Int.random(in: 0...600, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
                if round % 2 == 0, bytes.count > 5 { bytes[0] = 22; bytes[1] = 3 }
            } else {
                bytes = Self.captures[round % Self.captures.count].bytes
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            let whole = Self.read([bytes[...]])
            let cut = Int.random(in: 0...bytes.count, using: &random)
            #expect(Self.read([bytes[..<cut], bytes[cut...]]) == whole)
        }
    }

    @Test func routes() {
        #expect(FrontRoute(alpn: ["imap"]) == .imap)
        #expect(FrontRoute(alpn: ["smtp"]) == .smtp)
        #expect(FrontRoute(alpn: []) == .here)
        #expect(FrontRoute(alpn: ["h2", "http/1.1"]) == .here)
        #expect(FrontRoute(alpn: ["http/1.1", "imap"]) == .here)
        #expect(FrontRoute(alpn: ["x-unknown", "imap"]) == .imap)
        #expect(FrontRoute(alpn: ["IMAP"]) == .here)
    }
}
