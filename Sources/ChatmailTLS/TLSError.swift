import COpenSSL

/// A TLS failure: a bad certificate or key, a failed handshake, a protocol violation by the peer.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case configuration
        case handshakeFailed
        case protocolError
        /// The peer closed the connection without close_notify in the middle of the handshake.
        case unexpectedEOF
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        switch kind {
        case .configuration: "TLS configuration: \(reason)"
        case .handshakeFailed: "TLS handshake failed: \(reason)"
        case .protocolError: "TLS error: \(reason)"
        case .unexpectedEOF: "TLS: the peer closed the connection during the handshake"
        }
    }

    /// Drains OpenSSL's error queue of this thread into one line.
    static func drainQueue() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? "unknown error" : reasons.joined(separator: "; ")
    }

    static func configuration(_ what: String) -> TLSError {
        TLSError(.configuration, "\(what): \(drainQueue())")
    }
}
