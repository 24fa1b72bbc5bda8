import COpenSSL
import Foundation

/// A certificate chain and its private key, in PEM files.
public struct TLSIdentity: Sendable, Hashable {
    public var certificatePath: String
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// An OpenSSL `SSL_CTX` with this project's policy: TLS 1.2 and 1.3 only, forward-secret AEAD
/// ciphers, no compression, no renegotiation. A server context can hold several identities and
/// picks one by SNI (matching the names in each certificate); the first is the default.
/// Immutable once made, and safe to share: reload makes a new one.
public final class TLSContext: @unchecked Sendable {
    /// Modern TLS 1.2 suites (TLS 1.3 keeps OpenSSL's default AEAD suites).
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    let context: OpaquePointer
    private var identityContexts: [OpaquePointer] = []
    private var alpnList: UnsafeMutablePointer<cm_alpn_list>?
    private var sniTable: UnsafeMutablePointer<cm_sni_table>?
    private var sniNames: [UnsafeMutablePointer<CChar>] = []
    public let isServer: Bool
    /// The names each identity's certificate is for, in order.
    public private(set) var names: [[String]] = []

    /// How often an identity that does not load is read again before the failure counts, and
    /// the pause before each new attempt: a certificate and key caught while another process
    /// replaces them (a renewal, a reload) can be one old file and one new for a moment.
    struct LoadRetry: Sendable {
        var attempts: Int
        var pause: @Sendable (_ attempt: Int) -> Void

        /// Five reads, 25 to 200 ms apart (under 0.4 s in all).
        static let standard = LoadRetry(attempts: 5, pause: sleep)
        static let none = LoadRetry(attempts: 1) { _ in }

        private static func sleep(_ attempt: Int) {
            var pause = timespec(tv_sec: 0, tv_nsec: 25_000_000 << (attempt - 1))
            var left = timespec()
            while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
        }
    }

    /// A server context for `identities` (at least one), offering `alpn` in order of preference.
    /// A pair that does not load (a key that does not match its certificate, say) is read again
    /// a few times before the error is thrown.
    public convenience init(server identities: [TLSIdentity], alpn: [String] = []) throws(TLSError) {
        try self.init(server: identities, alpn: alpn, retry: .standard)
    }

    init(server identities: [TLSIdentity], alpn: [String] = [], retry: LoadRetry) throws(TLSError) {
        guard !identities.isEmpty else { throw TLSError(.configuration, "no certificate configured") }
        isServer = true
        context = try Self.makeContext(server: true)
        // Once `context` is set, every stored property is: a throw from here on runs deinit,
        // which frees what was made so far.
        alpnList = Self.wireFormat(alpn)
        for (index, identity) in identities.enumerated() {
            let ctx = index == 0 ? context : try Self.makeContext(server: true)
            if index > 0 { identityContexts.append(ctx) }
            try Self.load(identity, into: ctx, retry: retry)
            if let alpnList { cm_ssl_ctx_set_alpn_list(ctx, alpnList) }
            names.append(Self.certificateNames(ctx))
        }
        if identities.count > 1 { installSNI() }
    }

    /// A client context. It verifies the server against `trustedCertificates` (a PEM file) or
    /// the system's roots, unless `verify` is false (tests only).
    public init(client verify: Bool = true, trustedCertificates: String? = nil, alpn: [String] = []) throws(TLSError) {
        isServer = false
        context = try Self.makeContext(server: false)
        if verify {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            let loaded =
                trustedCertificates.map { SSL_CTX_load_verify_locations(context, $0, nil) }
                ?? SSL_CTX_set_default_verify_paths(context)
            guard loaded == 1 else { throw .configuration("cannot load trusted certificates") }
        }
        if !alpn.isEmpty, let list = Self.wireFormat(alpn) {
            alpnList = list
            SSL_CTX_set_alpn_protos(context, list.pointee.protocols, list.pointee.length)
        }
    }

    deinit {
        SSL_CTX_free(context)
        identityContexts.forEach { SSL_CTX_free($0) }
        if let alpnList {
            alpnList.pointee.protocols.deallocate()
            alpnList.deallocate()
        }
        if let sniTable {
            sniTable.pointee.names.deallocate()
            sniTable.pointee.contexts.deallocate()
            sniTable.deallocate()
        }
        sniNames.forEach { free($0) }
    }

    private static func makeContext(server: Bool) throws(TLSError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw .configuration("SSL_CTX_new")
        }
        _ = cm_ssl_ctx_set_min_proto(ctx, TLS1_2_VERSION)
        _ = cm_ssl_ctx_set_max_proto(ctx, TLS1_3_VERSION)
        cm_ssl_ctx_set_policy_options(ctx)
        _ = cm_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        guard SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1 else {
            SSL_CTX_free(ctx)
            throw .configuration("cipher list")
        }
        return ctx
    }

    private static func load(_ identity: TLSIdentity, into ctx: OpaquePointer, retry: LoadRetry) throws(TLSError) {
        for attempt in 1..<max(retry.attempts, 1) {
            if loaded(identity, into: ctx) { return }
            retry.pause(attempt)
        }
        try load(identity, into: ctx)
    }

    /// One attempt, its error dropped (the error queue is drained by `TLSError.configuration`).
    private static func loaded(_ identity: TLSIdentity, into ctx: OpaquePointer) -> Bool {
        do {
            try load(identity, into: ctx)
            return true
        } catch {
            return false
        }
    }

    private static func load(_ identity: TLSIdentity, into ctx: OpaquePointer) throws(TLSError) {
        guard SSL_CTX_use_certificate_chain_file(ctx, identity.certificatePath) == 1 else {
            throw .configuration("certificate \(identity.certificatePath)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, identity.keyPath, SSL_FILETYPE_PEM) == 1 else {
            throw .configuration("key \(identity.keyPath)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .configuration("key \(identity.keyPath) does not match \(identity.certificatePath)")
        }
    }

    private static func certificateNames(_ ctx: OpaquePointer) -> [String] {
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        guard let certificate = SSL_CTX_get0_certificate(ctx) else { return [] }
        withExtendedLifetime(collector) {
            cm_x509_names(certificate, Unmanaged.passUnretained(collector).toOpaque()) { context, name in
                let collector = Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue()
                collector.names.append(String(cString: name!).lowercased())
            }
        }
        return collector.names
    }

    /// The SNI table: every name of every identity, first identity first (it wins ties).
    private func installSNI() {
        let contexts = [context] + identityContexts
        var pairs: [(String, OpaquePointer)] = []
        for (index, list) in names.enumerated() { pairs += list.map { ($0, contexts[index]) } }
        let table = UnsafeMutablePointer<cm_sni_table>.allocate(capacity: 1)
        let namePointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(pairs.count, 1))
        let contextPointers = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: max(pairs.count, 1))
        for (index, (name, ctx)) in pairs.enumerated() {
            let copy = strdup(name)!
            sniNames.append(copy)
            namePointers[index] = UnsafePointer(copy)
            contextPointers[index] = ctx
        }
        table.initialize(to: cm_sni_table(count: Int32(pairs.count), names: namePointers, contexts: contextPointers))
        sniTable = table
        cm_ssl_ctx_set_sni_table(context, table)
    }

    /// ALPN protocol names in wire format: each prefixed with its length.
    private static func wireFormat(_ protocols: [String]) -> UnsafeMutablePointer<cm_alpn_list>? {
        let bytes = protocols.filter { !$0.isEmpty && $0.utf8.count < 256 }.flatMap { [UInt8($0.utf8.count)] + $0.utf8 }
        guard !bytes.isEmpty else { return nil }
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        storage.initialize(from: bytes, count: bytes.count)
        let list = UnsafeMutablePointer<cm_alpn_list>.allocate(capacity: 1)
        list.initialize(to: cm_alpn_list(protocols: storage, length: UInt32(bytes.count)))
        return list
    }

    /// A new connection's `SSL` object.
    func makeConnection() -> OpaquePointer? { SSL_new(context) }
}
