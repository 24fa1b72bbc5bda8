/// Reads the ALPN protocols of a TLS ClientHello without terminating TLS, as nginx's `ssl_preread` does: the
/// bytes are fed as they come, in any pieces, and the reader says when it has seen the whole ClientHello.
///
/// The ClientHello may span several handshake records (a large one does: 16 KiB of extensions). Bounds: a record
/// longer than TLS allows (2^14 bytes) or of length zero, a ClientHello longer than `maxHelloLength`, and more than
/// `maxBytes` fed in all are malformed, so what a caller buffers meanwhile is bounded by `maxBytes`. A duplicate
/// extension (RFC 8446 §4.2) is malformed too. After a result other than `needMore`, the result stays.
public struct ClientHelloReader: Sendable {
    public enum Result: Equatable, Sendable {
        case needMore
        /// The ClientHello is complete: its ALPN protocol names in the client's order, empty without ALPN.
        /// Names that are not UTF-8 are decoded with replacement characters (so they match no route).
        case alpn([String])
        case malformed(String)
    }

    /// The longest TLS plaintext record (RFC 8446 §5.1).
    public static let maxRecordLength = 1 << 14
    public let maxHelloLength: Int
    public let maxBytes: Int

    private var header: [UInt8] = []
    private var recordRemaining = 0
    private var hello: [UInt8] = []
    private var helloLength: Int?
    private var fed = 0
    public private(set) var result = Result.needMore

    public init(maxHelloLength: Int = 32 << 10, maxBytes: Int = 40 << 10) {
        self.maxHelloLength = maxHelloLength
        self.maxBytes = maxBytes
    }

    /// Takes the next bytes from the client.
    @discardableResult
    public mutating func feed(_ bytes: some Collection<UInt8>) -> Result {
        guard result == .needMore else { return result }
        fed += bytes.count
        var rest = bytes[...]
        while !rest.isEmpty, result == .needMore {
            if recordRemaining == 0 {
                let take = min(5 - header.count, rest.count)
                header += rest.prefix(take)
                rest = rest.dropFirst(take)
                if header.count == 5 { result = startRecord() }
            } else {
                let take = min(recordRemaining, rest.count)
                hello += rest.prefix(take)
                rest = rest.dropFirst(take)
                recordRemaining -= take
                result = helloProgress()
            }
        }
        if result == .needMore, fed > maxBytes {
            result = .malformed("more than \(maxBytes) bytes without a ClientHello")
        }
        return result
    }

    private mutating func startRecord() -> Result {
        defer { header.removeAll(keepingCapacity: true) }
        guard header[0] == 22 else { return .malformed("not a TLS handshake record") }
        guard header[1] == 3 else { return .malformed("not TLS (record version \(header[1]).\(header[2]))") }
        let length = Int(header[3]) << 8 | Int(header[4])
        guard length > 0 else { return .malformed("empty handshake record") }
        guard length <= Self.maxRecordLength else { return .malformed("record of \(length) bytes") }
        recordRemaining = length
        return .needMore
    }

    private mutating func helloProgress() -> Result {
        if helloLength == nil, hello.count >= 4 {
            guard hello[0] == 1 else { return .malformed("handshake message \(hello[0]), not a ClientHello") }
            let length = Int(hello[1]) << 16 | Int(hello[2]) << 8 | Int(hello[3])
            guard length <= maxHelloLength else { return .malformed("ClientHello of \(length) bytes") }
            helloLength = length
        }
        guard let helloLength, hello.count >= helloLength + 4 else { return .needMore }
        do {
            return .alpn(try Self.parse(hello[4..<(4 + helloLength)]))
        } catch {
            return .malformed(error.reason)
        }
    }

    struct Malformed: Error {
        var reason: String
    }

    /// The ALPN names of a ClientHello body (RFC 8446 §4.1.2, RFC 7301 §3.1).
    static func parse(_ body: ArraySlice<UInt8>) throws(Malformed) -> [String] {
        var cursor = Cursor(body)
        try cursor.skip(2 + 32)  // legacy_version, random
        let sessionID = try cursor.length(bytes: 1)
        guard sessionID <= 32 else { throw Malformed(reason: "session id of \(sessionID) bytes") }
        try cursor.skip(sessionID)
        let suites = try cursor.length(bytes: 2)
        guard suites >= 2, suites % 2 == 0 else { throw Malformed(reason: "cipher suites of \(suites) bytes") }
        try cursor.skip(suites)
        let compression = try cursor.length(bytes: 1)
        guard compression >= 1 else { throw Malformed(reason: "no compression methods") }
        try cursor.skip(compression)
        if cursor.isAtEnd { return [] }  // no extensions (TLS 1.2 allows it)
        var extensions = Cursor(try cursor.take(try cursor.length(bytes: 2)))
        guard cursor.isAtEnd else { throw Malformed(reason: "bytes after the extensions") }
        var seen = Set<Int>()
        var protocols: [String] = []
        while !extensions.isAtEnd {
            let type = try extensions.length(bytes: 2)
            let data = try extensions.take(try extensions.length(bytes: 2))
            guard seen.insert(type).inserted else { throw Malformed(reason: "duplicate extension \(type)") }
            if type == 16 { protocols = try parseALPN(data) }
        }
        return protocols
    }

    private static func parseALPN(_ data: ArraySlice<UInt8>) throws(Malformed) -> [String] {
        var outer = Cursor(data)
        var list = Cursor(try outer.take(try outer.length(bytes: 2)))
        guard outer.isAtEnd, !list.isAtEnd else { throw Malformed(reason: "malformed ALPN extension") }
        var names: [String] = []
        while !list.isAtEnd {
            let length = try list.length(bytes: 1)
            guard length > 0 else { throw Malformed(reason: "empty ALPN protocol name") }
            names.append(String(decoding: try list.take(length), as: UTF8.self))
        }
        return names
    }

    /// Reads big-endian lengths and byte runs from a slice, throwing past its end.
    struct Cursor {
        private var bytes: ArraySlice<UInt8>

        init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

        var isAtEnd: Bool { bytes.isEmpty }

        mutating func length(bytes count: Int) throws(Malformed) -> Int {
            try take(count).reduce(0) { $0 << 8 | Int($1) }
        }

        mutating func take(_ count: Int) throws(Malformed) -> ArraySlice<UInt8> {
            guard bytes.count >= count else { throw Malformed(reason: "ClientHello cut short") }
            defer { bytes = bytes.dropFirst(count) }
            return bytes.prefix(count)
        }

        mutating func skip(_ count: Int) throws(Malformed) { _ = try take(count) }
    }
}

/// Where the front sends a connection, by the ALPN protocols of its ClientHello.
public enum FrontRoute: String, Sendable, Equatable {
    /// To IMAP's TLS service.
    case imap
    /// To the MTA's SMTPS service.
    case smtp
    /// Served here (HTTPS: the iroh relay, `/new`, autoconfig).
    case here

    /// The client's first protocol that names a service (`imap`, `smtp`, or an HTTP one); without any, here.
    public init(alpn: [String]) {
        self = .here
        for name in alpn {
            switch name {
            case "imap": self = .imap
            case "smtp": self = .smtp
            case "http/1.1", "h2", "http/1.0": self = .here
            default: continue
            }
            return
        }
    }
}
