import NIOCore

/// An endpoint's identity: its 32-byte Ed25519 public key ("node id" in iroh 0.35, "endpoint id" in 1.x).
///
/// Held as four words so that hashing and comparing it on every forwarded packet costs no allocation.
public struct EndpointKey: Hashable, Sendable, CustomStringConvertible {
    public static let length = 32

    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The key in `bytes`, which must hold exactly 32 bytes.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == Self.length else { return nil }
        var buffer = ByteBuffer(bytes: bytes)
        self.init(reading: &buffer)
    }

    /// Reads 32 bytes from `buffer`; nil (and nothing read) when fewer are readable.
    public init?(reading buffer: inout ByteBuffer) {
        guard buffer.readableBytes >= Self.length,
            let a = buffer.readInteger(as: UInt64.self), let b = buffer.readInteger(as: UInt64.self),
            let c = buffer.readInteger(as: UInt64.self), let d = buffer.readInteger(as: UInt64.self)
        else { return nil }
        words = (a, b, c, d)
    }

    public var bytes: [UInt8] {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return Array(buffer.readableBytesView)
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(words.0, words.1, words.2, words.3)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// The first 10 hex digits, as iroh logs endpoint ids.
    public var description: String {
        String(words.0 >> 24, radix: 16).leftPadded(to: 10)
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
