import NIOCore
import ShadowsocksCore

#if canImport(Glibc)
    import Glibc
#endif

/// The Shadowsocks check, as Delta Chat uses the `ss://` link: connect to the link's host and port, ask for
/// the IMAP port of this server, and read IMAP's TLS greeting through the tunnel.
public struct ShadowsocksProbe {
    public var link: String
    public var credential: ShadowsocksCredential
    public var host: String
    public var port: UInt16
    /// The target clients ask for: this server's name or address, and IMAP's public TLS port.
    public var target: TargetAddress
    /// The name for TLS through the tunnel.
    public var imapName: String
    public var timeout: Duration

    public init(
        link: String, credential: ShadowsocksCredential, host: String, port: UInt16, target: TargetAddress,
        imapName: String, timeout: Duration
    ) {
        (self.link, self.credential, self.host, self.port) = (link, credential, host, port)
        (self.target, self.imapName, self.timeout) = (target, imapName, timeout)
    }

    public func run() -> [DoctorStep] {
        let log = StepLog(service: "shadowsocks", host: host)
        log.run("imap through ss://", timeout: timeout) { deadline throws(NetError) -> Outcome<Void> in
            let result = Result { () throws(NetError) in try attempt(deadline: deadline) }
            // The server answers a wrong key with silence, so a timeout after connecting may be either.
            if case .failure(.timeout(let what)) = result {
                throw NetError.timeout(what + " (a wrong key or a refused target is answered with silence)")
            }
            return try result.get()
        }
        return log.steps
    }

    private func attempt(deadline: Deadline) throws(NetError) -> Outcome<Void> {
        let socket = try Socket.connect(host: host, port: port, deadline: deadline)
        let start = ContinuousClock.now
        let tunnel = try ShadowsocksStream(over: socket, credential: credential, target: target, deadline: deadline)
        let tls = try TLSStream(over: tunnel, serverName: imapName, alpn: ["imap"], deadline: deadline)
        defer { tls.close() }
        let greeting = try StreamReader(tls).readLine(deadline: deadline)
        guard greeting.hasPrefix("* OK") else { throw .protocolError("IMAP greeting: \(greeting.prefix(60))") }
        return Outcome(
            value: (), detail: "\(host):\(port) (\(credential.method.rawValue)) to \(target): IMAP greets over TLS"
        ).timed(since: start)
    }
}

/// A Shadowsocks TCP tunnel as a byte stream: writes are sealed, reads opened.
final class ShadowsocksStream: ByteStream {
    private let inner: any ByteStream
    private var session: ClientSession
    private var input = ByteBuffer()

    init(over inner: any ByteStream, credential: ShadowsocksCredential, target: TargetAddress, deadline: Deadline)
        throws(NetError)
    {
        self.inner = inner
        let request: ByteBuffer
        do {
            (session, request) = try ClientSession.start(
                credential: credential, target: target, now: UInt64(time(nil)))
        } catch {
            throw .system("cannot make the Shadowsocks request: \(error)")
        }
        try inner.write(Array(request.readableBytesView), deadline: deadline)
    }

    func write(_ bytes: [UInt8], deadline: Deadline) throws(NetError) {
        var plain = ByteBuffer(bytes: bytes)
        var sealed = ByteBuffer()
        do {
            try session.sealer.seal(&plain, into: &sealed, now: UInt64(time(nil)))
        } catch {
            throw .system("cannot seal: \(error)")
        }
        try inner.write(Array(sealed.readableBytesView), deadline: deadline)
    }

    func read(deadline: Deadline) throws(NetError) -> [UInt8] {
        while true {
            var output = ByteBuffer()
            do {
                try session.receive(&input, into: &output)
            } catch {
                throw .protocolError("the Shadowsocks server's answer does not open with this key: \(error)")
            }
            if output.readableBytes > 0 { return Array(output.readableBytesView) }
            input.writeBytes(try inner.read(deadline: deadline))
        }
    }

    func close() { inner.close() }
}
