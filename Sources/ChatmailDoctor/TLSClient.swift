import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// What the server's certificate says, checked the way a client would.
public struct CertificateCheck: Sendable, Equatable {
    /// The certificate's DNS names (subjectAltName, else the common name).
    public var names: [String]
    /// Whether it is valid for the name (or IP address) the client connected to.
    public var matchesName: Bool
    /// Days until it expires (negative: expired).
    public var daysLeft: Int
    /// OpenSSL's verdict on the chain against the system's roots (X509_V_OK = 0).
    public var verifyResult: Int
    public var verifyText: String

    public var selfSigned: Bool {
        verifyResult == Int(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
            || verifyResult == Int(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
    }

    /// The verdict for a client that connects to `name`: a name mismatch, an expired or otherwise untrusted
    /// certificate fail; a self-signed one (the development bundle) and one that expires within 14 days warn.
    public func verdict(name: String) -> (DoctorStep.Verdict, String, Cause?) {
        let names = names.joined(separator: ", ")
        if !matchesName { return (.fail, "certificate is for \(names), not \(name)", .tlsNameMismatch) }
        if daysLeft < 0 { return (.fail, "certificate for \(names) expired \(-daysLeft) days ago", .tlsCertificate) }
        if selfSigned {
            return (
                .warn, "self-signed certificate for \(names) (clients refuse it; fine for development)", .tlsCertificate
            )
        }
        if verifyResult != 0 { return (.fail, "certificate for \(names): \(verifyText)", .tlsCertificate) }
        if daysLeft < 14 { return (.warn, "certificate for \(names) expires in \(daysLeft) days", .tlsCertificate) }
        return (.pass, "certificate for \(names), valid \(daysLeft) more days", nil)
    }
}

/// TLS over any byte stream (a socket, or a Shadowsocks tunnel) through OpenSSL's memory BIOs. The handshake
/// does not enforce verification: it records what a client would decide (`certificate`), so the doctor can
/// tell a name mismatch from a self-signed development certificate.
public final class TLSStream: ByteStream {
    private let inner: any ByteStream
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    public private(set) var certificate: CertificateCheck?

    /// Connects over `inner` with SNI `serverName` (left out for an IP address) and checks the certificate
    /// against `serverName`.
    public init(over inner: any ByteStream, serverName: String, alpn: [String] = [], deadline: Deadline)
        throws(NetError)
    {
        self.inner = inner
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw .tls("SSL_CTX_new failed") }
        self.context = context
        SSL_CTX_set_default_verify_paths(context)
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        guard let ssl = SSL_new(context), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem())
        else {
            SSL_CTX_free(context)
            throw .tls("SSL_new failed")
        }
        (self.ssl, self.readBIO, self.writeBIO) = (ssl, readBIO, writeBIO)
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_connect_state(ssl)
        let isAddress = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
        if !isAddress { _ = cm_ssl_set_tlsext_host_name(ssl, serverName) }
        if !alpn.isEmpty {
            let wire = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            SSL_set_alpn_protos(ssl, wire, UInt32(wire.count))
        }
        while true {
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            if result == 1 { break }
            try pump(result, deadline: deadline, during: "handshake")
        }
        try flush(deadline: deadline)
        certificate = check(name: serverName, isAddress: isAddress)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    public func close() {
        _ = SSL_shutdown(ssl)
        try? flush(deadline: Deadline(in: .milliseconds(100)))
        inner.close()
    }

    /// Handles a non-success SSL result: sends what OpenSSL wrote, reads more when it wants to read.
    private func pump(_ result: Int32, deadline: Deadline, during what: String) throws(NetError) {
        let error = SSL_get_error(ssl, result)
        try flush(deadline: deadline)
        switch error {
        case SSL_ERROR_WANT_READ:
            let bytes = try inner.read(deadline: deadline)
            _ = bytes.withUnsafeBytes { BIO_write(readBIO, $0.baseAddress, Int32($0.count)) }
        case SSL_ERROR_WANT_WRITE:
            break
        case SSL_ERROR_ZERO_RETURN:
            throw .closed("the TLS peer")
        default:
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(ERR_get_error(), &text, text.count)
            throw .tls(
                "\(what) failed: \(string(fromC: text))"
            )
        }
    }

    private func flush(deadline: Deadline) throws(NetError) {
        while cm_bio_pending(writeBIO) > 0 {
            var chunk = [UInt8](repeating: 0, count: Int(cm_bio_pending(writeBIO)))
            let count = chunk.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { return }
            try inner.write(Array(chunk[0..<Int(count)]), deadline: deadline)
        }
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(NetError) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let written = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32($0.count - offset)) }
            if written > 0 {
                offset += Int(written)
            } else {
                try pump(written, deadline: deadline, during: "write")
            }
        }
        try flush(deadline: deadline)
    }

    public func read(deadline: Deadline) throws(NetError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            ERR_clear_error()
            let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 { return Array(buffer[0..<Int(count)]) }
            try pump(count, deadline: deadline, during: "read")
        }
    }

    private func check(name: String, isAddress: Bool) -> CertificateCheck? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        final class Collector { var names: [String] = [] }
        let collector = Collector()
        withExtendedLifetime(collector) {
            cm_x509_names(certificate, Unmanaged.passUnretained(collector).toOpaque()) { context, name in
                Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue().names.append(String(cString: name!))
            }
        }
        let matches =
            isAddress
            ? X509_check_ip_asc(certificate, name, 0) == 1
            : X509_check_host(certificate, name, name.utf8.count, 0, nil) == 1
        var days: Int32 = 0
        var seconds: Int32 = 0
        ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(certificate))
        let result = SSL_get_verify_result(ssl)
        return CertificateCheck(
            names: collector.names, matchesName: matches, daysLeft: Int(days), verifyResult: Int(result),
            verifyText: String(cString: X509_verify_cert_error_string(result)))
    }
}
