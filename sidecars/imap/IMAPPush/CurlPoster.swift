import CPushCurl
import IMAPCore
import Synchronization

/// Posts a device token to the notification proxy. Blocking: runs on the push thread pool, never
/// on an event loop.
public protocol PushPoster: Sendable {
    func post(_ token: [UInt8]) -> PushResult
}

/// The poster on libcurl (Debian's, on the system OpenSSL): the token as the body of an HTTPS
/// POST, the certificate checked against the system's CAs or `caFile`. Easy handles are reused,
/// so a busy server keeps its connections to the proxy open.
public final class CurlPoster: PushPoster {
    public let url: String
    public let caFile: String?
    public let timeoutMilliseconds: Int
    /// A libcurl handle; used by one post at a time.
    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }
    /// Handles not in use (each keeps its connection).
    private let idle = Mutex<[Handle]>([])

    public init(url: String, caFile: String? = nil, timeoutSeconds: Int = 30) {
        self.url = url
        self.caFile = caFile?.isEmpty == true ? nil : caFile
        self.timeoutMilliseconds = timeoutSeconds * 1000
    }

    deinit {
        idle.withLock { handles in handles.forEach { chatmail_push_handle_free($0.pointer) } }
    }

    public func post(_ token: [UInt8]) -> PushResult {
        guard let handle = idle.withLock({ $0.popLast() }) ?? chatmail_push_handle_new().map(Handle.init) else {
            return .failed("libcurl could not start")
        }
        defer { idle.withLock { $0.append(handle) } }
        var error = [CChar](repeating: 0, count: 256)
        let status = token.withUnsafeBytes { body in
            error.withUnsafeMutableBufferPointer { buffer in
                chatmail_push_post(
                    handle.pointer, url, caFile, body.baseAddress, body.count, timeoutMilliseconds, buffer.baseAddress,
                    buffer.count)
            }
        }
        guard status >= 0 else {
            return .failed(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return PushResult(status: status)
    }
}
