import ChatmailCrypto
import NIOCore

/// What can go wrong in a Shadowsocks stream or request. None of it is ever shown to the peer.
public enum ShadowsocksError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A chunk did not authenticate (wrong key, corrupted or probing bytes).
    case authentication
    /// A length chunk was 0 or above the method's maximum.
    case chunkLength(Int)
    /// The request does not start with a valid address.
    case address
    /// A 2022 header has the wrong type, an impossible length or bad padding.
    case header
    /// A 2022 request timestamp is outside the allowed skew.
    case timestamp
    /// The salt was seen before.
    case replay

    public var description: String {
        switch self {
        case .authentication: "authentication failed"
        case .chunkLength(let length): "invalid chunk length \(length)"
        case .address: "invalid target address"
        case .header: "invalid request header"
        case .timestamp: "request timestamp outside the allowed window"
        case .replay: "replayed salt"
        }
    }
}

/// The 12-byte little-endian counter nonce of one direction, incremented after every seal or open.
struct NonceCounter {
    private(set) var value: UInt64 = 0

    mutating func next<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var nonce: (UInt64, UInt32) = (value.littleEndian, 0)
        value += 1
        return try withUnsafeBytes(of: &nonce) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<12])) }
    }
}

nonisolated(unsafe) private let noAAD = UnsafeRawBufferPointer(start: nil, count: 0)

/// Opens one direction of a stream: [sealed u16be length][sealed payload] repeated. Payloads are decrypted
/// straight into the output buffer; nothing is allocated.
public struct ChunkOpener {
    private let aead: AEAD
    /// The largest payload a chunk may announce.
    public let maximumPayload: Int
    private var nonce = NonceCounter()
    /// The length of the next payload chunk, once its length chunk has opened.
    private var pendingLength: Int?

    public init(method: ShadowsocksMethod, subkey: [UInt8]) throws {
        aead = try AEAD(method.algorithm, key: subkey)
        maximumPayload = method.maximumPayload
    }

    /// Opens every complete chunk at the front of `input` and appends the payloads to `output`. A partial
    /// chunk stays in `input` for the next call.
    public mutating func open(from input: inout ByteBuffer, into output: inout ByteBuffer) throws(ShadowsocksError) {
        while true {
            if pendingLength == nil {
                guard let length = try openLength(from: &input) else { return }
                guard length > 0, length <= maximumPayload else { throw .chunkLength(length) }
                pendingLength = length
            }
            guard try openBlock(pendingLength!, from: &input, into: &output) else { return }
            pendingLength = nil
        }
    }

    /// Opens a sealed u16be at the front of `input`; nil (consuming nothing) if it is not all there.
    mutating func openLength(from input: inout ByteBuffer) throws(ShadowsocksError) -> Int? {
        guard input.readableBytes >= 18 else { return nil }
        var length: UInt16 = 0
        let aead = aead
        let ok: Bool = input.readWithUnsafeReadableBytes { bytes in
            let sealed = withUnsafeMutableBytes(of: &length) { plain in
                plain.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<2]))
                return nonce.next { nonce in
                    (try? aead.open(
                        nonce: nonce, aad: noAAD, inPlace: plain, tag: UnsafeRawBufferPointer(rebasing: bytes[2..<18])))
                        != nil
                }
            }
            return (18, sealed)
        }
        guard ok else { throw .authentication }
        return Int(UInt16(bigEndian: length))
    }

    /// Opens `count` sealed bytes and their tag at the front of `input`, decrypting them straight into `output`;
    /// false (consuming nothing) if they are not all there.
    mutating func openBlock(_ count: Int, from input: inout ByteBuffer, into output: inout ByteBuffer)
        throws(ShadowsocksError) -> Bool
    {
        guard input.readableBytes >= count + 16 else { return false }
        let aead = aead
        var opened = false
        input.readWithUnsafeReadableBytes { sealed in
            let ciphertext = UnsafeRawBufferPointer(rebasing: sealed[0..<count])
            let tag = UnsafeRawBufferPointer(rebasing: sealed[count..<(count + 16)])
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
                let plaintext = UnsafeMutableRawBufferPointer(rebasing: out[0..<count])
                opened = nonce.next { nonce in
                    (try? aead.open(nonce: nonce, aad: noAAD, ciphertext: ciphertext, into: plaintext, tag: tag)) != nil
                }
                return opened ? count : 0
            }
            return opened ? count + 16 : 0
        }
        guard opened else { throw .authentication }
        return true
    }
}

/// Seals one direction of a stream into chunks of at most the method's maximum payload. The first output
/// starts with the salt and, for 2022, the response header (type 1, timestamp, the request's salt, the first
/// chunk's length) with the first payload in the same write, as SIP022 asks.
public struct ChunkSealer {
    private let aead: AEAD
    public let method: ShadowsocksMethod
    private var nonce = NonceCounter()
    /// The salt (and for 2022 the request salt for the header) until the first output carries them.
    private var pendingSalt: [UInt8]?
    private let requestSalt: [UInt8]?

    /// A sealer that starts its stream with `salt`. `requestSalt` makes it a 2022 response stream; without it,
    /// it seals a SIP004 stream (either direction) or a 2022 request (header blocks first, with `sealBlock`).
    public init(method: ShadowsocksMethod, key: [UInt8], salt: [UInt8], requestSalt: [UInt8]? = nil) throws {
        precondition(salt.count == method.saltLength)
        self.method = method
        self.aead = try AEAD(method.algorithm, key: method.sessionSubkey(key: key, salt: salt))
        self.pendingSalt = salt
        self.requestSalt = method.is2022 ? requestSalt : nil
    }

    /// The most bytes `seal` writes for `count` plaintext bytes (salt and header included on the first call).
    public func sealedSize(_ count: Int) -> Int {
        let chunks = (count + method.maximumPayload - 1) / method.maximumPayload
        var size = count + chunks * 34
        if let pendingSalt { size += pendingSalt.count + (requestSalt.map { 27 + $0.count } ?? 0) }
        return size
    }

    /// Seals all of `input` (nothing when it is empty) and appends the result to `output`. `now` (Unix seconds)
    /// goes into a 2022 response header.
    public mutating func seal(_ input: inout ByteBuffer, into output: inout ByteBuffer, now: UInt64) throws {
        guard input.readableBytes > 0 else { return }
        output.reserveCapacity(minimumWritableBytes: sealedSize(input.readableBytes))
        if let salt = pendingSalt {
            pendingSalt = nil
            output.writeBytes(salt)
            if let requestSalt {
                let first = min(input.readableBytes, method.maximumPayload)
                let start = output.writerIndex
                output.writeInteger(UInt8(1))
                output.writeInteger(now)
                output.writeBytes(requestSalt)
                output.writeInteger(UInt16(first))
                try sealWritten(from: start, into: &output)
                try sealPayload(first, from: &input, into: &output)
            }
        }
        while input.readableBytes > 0 {
            let count = min(input.readableBytes, method.maximumPayload)
            let start = output.writerIndex
            output.writeInteger(UInt16(count))
            try sealWritten(from: start, into: &output)
            try sealPayload(count, from: &input, into: &output)
        }
    }

    /// Seals raw bytes as one block (header chunks written by a client).
    public mutating func sealBlock(_ bytes: [UInt8], into output: inout ByteBuffer) throws {
        if let salt = pendingSalt {
            pendingSalt = nil
            output.writeBytes(salt)
        }
        let start = output.writerIndex
        output.writeBytes(bytes)
        try sealWritten(from: start, into: &output)
    }

    /// Seals the next `count` bytes of `input` straight into `output`, with their tag.
    private mutating func sealPayload(_ count: Int, from input: inout ByteBuffer, into output: inout ByteBuffer)
        throws
    {
        let aead = aead
        try input.readWithUnsafeReadableBytes { bytes in
            let plaintext = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: count + 16) { out in
                let ciphertext = UnsafeMutableRawBufferPointer(rebasing: out[0..<count])
                let tag = UnsafeMutableRawBufferPointer(rebasing: out[count..<(count + 16)])
                try nonce.next { nonce in
                    try aead.seal(nonce: nonce, aad: noAAD, plaintext: plaintext, into: ciphertext, tag: tag)
                }
                return count + 16
            }
            return count
        }
    }

    /// Seals `output[start..<writerIndex]` in place and appends its tag.
    private mutating func sealWritten(from start: Int, into output: inout ByteBuffer) throws {
        let count = output.writerIndex - start
        output.reserveCapacity(minimumWritableBytes: 16)
        let offset = start - output.readerIndex
        let aead = aead
        output.moveWriterIndex(forwardBy: 16)
        try output.withUnsafeMutableReadableBytes { bytes in
            let data = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
            let tag = UnsafeMutableRawBufferPointer(rebasing: bytes[(offset + count)..<(offset + count + 16)])
            try nonce.next { nonce in try aead.seal(nonce: nonce, aad: noAAD, inPlace: data, tag: tag) }
        }
    }
}
