import ChatmailCrypto
import NIOCore

/// The client side of a Shadowsocks TCP stream (SIP004 and SIP022), for `chatmailctl doctor`: the request a
/// client such as Delta Chat sends, and the reader of the server's response stream. The mirror of
/// `ServerHandshake` and the response `ChunkSealer`.
public struct ClientSession {
    public let credential: ShadowsocksCredential
    /// The request's salt (a SIP022 response names it).
    public let salt: [UInt8]
    /// Seals what the client sends after the request.
    public var sealer: ChunkSealer
    private var response: ResponseState = .salt

    private enum ResponseState {
        case salt
        /// SIP022: the first payload chunk's length came in the response header.
        case firstChunk(ChunkOpener, length: Int)
        case chunks(ChunkOpener)
    }

    /// Starts a session; `request` holds the salt and the header to send first (SIP022: with 16 bytes of
    /// padding, since there is no initial data).
    public static func start(credential: ShadowsocksCredential, target: TargetAddress, now: UInt64) throws -> (
        session: ClientSession, request: ByteBuffer
    ) {
        let method = credential.method
        let salt = Crypto.randomBytes(method.saltLength)
        var sealer = try ChunkSealer(method: method, key: credential.masterKey, salt: salt)
        var request = ByteBuffer()
        if method.is2022 {
            var variable = ByteBuffer()
            variable.writeBytes(target.encoded)
            variable.writeInteger(UInt16(16))
            variable.writeBytes(Crypto.randomBytes(16))
            var fixed = ByteBuffer()
            fixed.writeInteger(UInt8(0))
            fixed.writeInteger(now)
            fixed.writeInteger(UInt16(variable.readableBytes))
            try sealer.sealBlock(Array(fixed.readableBytesView), into: &request)
            try sealer.sealBlock(Array(variable.readableBytesView), into: &request)
        } else {
            var address = ByteBuffer(bytes: target.encoded)
            try sealer.seal(&address, into: &request, now: now)
        }
        return (ClientSession(credential: credential, salt: salt, sealer: sealer), request)
    }

    private init(credential: ShadowsocksCredential, salt: [UInt8], sealer: ChunkSealer) {
        (self.credential, self.salt, self.sealer) = (credential, salt, sealer)
    }

    /// Opens what it can of the server's stream from `input` into `output`; a partial piece stays in `input`.
    /// A SIP022 response must be of type 1 and name this request's salt.
    public mutating func receive(_ input: inout ByteBuffer, into output: inout ByteBuffer) throws(ShadowsocksError) {
        let method = credential.method
        while true {
            switch response {
            case .salt:
                let header = method.is2022 ? 1 + 8 + method.saltLength + 2 + 16 : 0
                guard input.readableBytes >= method.saltLength + header else { return }
                let serverSalt = input.readBytes(length: method.saltLength)!
                var opener: ChunkOpener
                do {
                    opener = try ChunkOpener(
                        method: method, subkey: method.sessionSubkey(key: credential.masterKey, salt: serverSalt))
                } catch {
                    throw .authentication
                }
                guard method.is2022 else {
                    response = .chunks(opener)
                    continue
                }
                var fixed = ByteBuffer()
                _ = try opener.openBlock(header - 16, from: &input, into: &fixed)
                guard fixed.readInteger(as: UInt8.self) == 1, fixed.readInteger(as: UInt64.self) != nil,
                    fixed.readBytes(length: method.saltLength) == salt,
                    let length = fixed.readInteger(as: UInt16.self)
                else { throw .header }
                response = .firstChunk(opener, length: Int(length))
            case .firstChunk(var opener, let length):
                guard try opener.openBlock(length, from: &input, into: &output) else { return }
                response = .chunks(opener)
            case .chunks(var opener):
                try opener.open(from: &input, into: &output)
                response = .chunks(opener)
                return
            }
        }
    }
}
