import Synchronization

/// The server context in use, replaceable at run time: a reload applies to new connections,
/// existing ones keep the context they started with. A broken new certificate is refused and
/// the old one stays.
public final class TLSContextProvider: Sendable {
    private let current: Mutex<TLSContext>
    public let alpn: [String]

    public init(identities: [TLSIdentity], alpn: [String] = []) throws(TLSError) {
        self.alpn = alpn
        current = Mutex(try TLSContext(server: identities, alpn: alpn))
    }

    /// The context for a new connection.
    public var context: TLSContext { current.withLock { $0 } }

    /// Loads `identities` anew; on error the running context stays and the error is thrown.
    public func reload(identities: [TLSIdentity]) throws(TLSError) {
        let next = try TLSContext(server: identities, alpn: alpn)
        current.withLock { $0 = next }
    }

    /// A handler for a new server connection.
    public func makeHandler() throws(TLSError) -> OpenSSLHandler {
        try OpenSSLHandler(context: context)
    }
}
