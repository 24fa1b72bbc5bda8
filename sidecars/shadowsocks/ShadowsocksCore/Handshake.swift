import NIOCore

/// A client's request once it authenticated: where it wants to go, its first data, and the opener that
/// continues its stream.
public struct ShadowsocksRequest {
    /// The request's salt, for the replay history and (2022) the response header.
    public var salt: [UInt8]
    public var target: TargetAddress
    /// Data that came with the request (after the address, or after the 2022 padding).
    public var initialPayload: ByteBuffer
    /// Opens the rest of the client's stream.
    public var opener: ChunkOpener
}

/// Reads a client's request from the start of a connection: the salt, then the address (SIP004: from the
/// first chunks; SIP022: the fixed header with type and timestamp, then the variable header with address and
/// padding). It consumes only complete pieces, so it can be fed whatever has arrived so far.
public struct ServerHandshake {
    public enum Outcome {
        /// Give me more bytes.
        case needMore
        /// The request authenticated and parsed (the caller still checks the salt against its history).
        case accepted(ShadowsocksRequest)
        /// Not a valid request; the caller must not reveal this to the peer.
        case failed(ShadowsocksError)
    }

    private enum State {
        case salt
        /// SIP004: chunks until the address is complete.
        case address(ChunkOpener, salt: [UInt8], plaintext: ByteBuffer)
        /// SIP022: the variable header of this length is next.
        case variableHeader(ChunkOpener, salt: [UInt8], length: Int)
        case done
    }

    /// The largest allowed difference between a 2022 request's timestamp and now, in seconds (SIP022: 30).
    public static let maximumClockSkew: UInt64 = 30
    /// SIP022's limit on request padding.
    public static let maximumPadding = 900

    public let credential: ShadowsocksCredential
    /// SIP022 requests stamped before this Unix time are refused: after a server start whose salt history may
    /// be incomplete (a crash), those could be replays of requests it accepted before.
    public let earliestTimestamp: UInt64
    private var state = State.salt

    public init(credential: ShadowsocksCredential, earliestTimestamp: UInt64 = 0) {
        self.credential = credential
        self.earliestTimestamp = earliestTimestamp
    }

    /// Consumes what it can of `input`. `now` is Unix time in seconds (2022 timestamps are checked against it).
    public mutating func receive(_ input: inout ByteBuffer, now: UInt64) -> Outcome {
        do {
            return try step(&input, now: now)
        } catch {
            state = .done
            return .failed(error)
        }
    }

    private mutating func step(_ input: inout ByteBuffer, now: UInt64) throws(ShadowsocksError) -> Outcome {
        let method = credential.method
        while true {
            switch state {
            case .salt:
                // SIP022: salt and fixed header come in one piece; SIP004: the salt alone.
                let needed = method.saltLength + (method.is2022 ? 11 + 16 : 0)
                guard input.readableBytes >= needed else { return .needMore }
                let salt = input.readBytes(length: method.saltLength)!
                let subkey: [UInt8]
                var opener: ChunkOpener
                do {
                    subkey = try method.sessionSubkey(key: credential.masterKey, salt: salt)
                    opener = try ChunkOpener(method: method, subkey: subkey)
                } catch {
                    throw .authentication
                }
                guard method.is2022 else {
                    state = .address(opener, salt: salt, plaintext: ByteBuffer())
                    continue
                }
                var header = ByteBuffer()
                _ = try opener.openBlock(11, from: &input, into: &header)
                let type = header.readInteger(as: UInt8.self)!
                let timestamp = header.readInteger(as: UInt64.self)!
                let length = Int(header.readInteger(as: UInt16.self)!)
                guard type == 0 else { throw .header }
                let skew = timestamp > now ? timestamp - now : now - timestamp
                guard skew <= Self.maximumClockSkew, timestamp >= earliestTimestamp else { throw .timestamp }
                // At least an IPv4 address and the padding length.
                guard length >= 7 + 2 else { throw .header }
                state = .variableHeader(opener, salt: salt, length: length)

            case .address(var opener, let salt, var plaintext):
                state = .done
                try opener.open(from: &input, into: &plaintext)
                switch TargetAddress.parse(plaintext.readableBytesView) {
                case .needMore:
                    guard plaintext.readableBytes < TargetAddress.maximumLength else { throw .address }
                    state = .address(opener, salt: salt, plaintext: plaintext)
                    return .needMore
                case .invalid:
                    throw .address
                case .parsed(let target, let length):
                    plaintext.moveReaderIndex(forwardBy: length)
                    return .accepted(
                        ShadowsocksRequest(salt: salt, target: target, initialPayload: plaintext, opener: opener))
                }

            case .variableHeader(var opener, let salt, let length):
                var header = ByteBuffer()
                guard try opener.openBlock(length, from: &input, into: &header) else { return .needMore }
                state = .done
                guard case .parsed(let target, let addressLength) = TargetAddress.parse(header.readableBytesView)
                else { throw .address }
                header.moveReaderIndex(forwardBy: addressLength)
                guard let padding = header.readInteger(as: UInt16.self).map(Int.init),
                    padding <= Self.maximumPadding, header.readableBytes >= padding
                else { throw .header }
                header.moveReaderIndex(forwardBy: padding)
                // SIP022: a request has padding or initial data.
                guard padding > 0 || header.readableBytes > 0 else { throw .header }
                return .accepted(ShadowsocksRequest(salt: salt, target: target, initialPayload: header, opener: opener))

            case .done:
                return .failed(.header)
            }
        }
    }
}
