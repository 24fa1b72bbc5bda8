#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A point in time by which a step must be done.
public struct Deadline: Sendable {
    public let end: ContinuousClock.Instant

    public init(in duration: Duration) { end = .now + duration }

    /// Milliseconds left for poll(2), at least 0.
    var pollMilliseconds: Int32 {
        let left = end - .now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    var expired: Bool { ContinuousClock.now >= end }
}

/// Why a network operation failed, in the terms the operator needs.
public enum NetError: Error, Sendable, Equatable, CustomStringConvertible {
    case unresolvable(String)
    /// ECONNREFUSED: a TCP RST or an ICMP port unreachable.
    case refused(String)
    case timeout(String)
    /// ENETUNREACH, EHOSTUNREACH and the like.
    case unreachable(String, String)
    /// The peer closed the connection.
    case closed(String)
    case tls(String)
    /// The peer said something we did not expect.
    case protocolError(String)
    /// The peer refused our credential.
    case authentication(String)
    case system(String)

    public var description: String {
        switch self {
        case .unresolvable(let host): "\(host) does not resolve"
        case .refused(let what): "connection to \(what) refused"
        case .timeout(let what): "no answer from \(what) in time"
        case .unreachable(let what, let reason): "\(what) unreachable (\(reason))"
        case .closed(let what): "\(what) closed the connection"
        case .tls(let reason): "TLS: \(reason)"
        case .protocolError(let reason): reason
        case .authentication(let reason): reason
        case .system(let reason): reason
        }
    }

    /// The cause an operator should look at.
    public var cause: Cause {
        switch self {
        case .unresolvable: .unresolvable
        case .refused: .portClosed
        case .timeout: .noAnswer
        case .unreachable: .wrongHost
        case .closed, .protocolError, .system: .protocolError
        case .tls: .tlsHandshake
        case .authentication: .authentication
        }
    }
}

/// A resolved socket address.
public struct Endpoint: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t
    public let host: String
    public let port: UInt16

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var family: Int32 { Int32(storage.ss_family) }

    /// Every address of `host` (a name or an IP literal), IPv4 first.
    public static func resolve(_ host: String, port: UInt16, datagram: Bool) throws(NetError) -> [Endpoint] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(datagram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = datagram ? SOCK_DGRAM : SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw .unresolvable(host)
        }
        defer { freeaddrinfo(list) }
        var result: [Endpoint] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            var storage = sockaddr_storage()
            let length = current.pointee.ai_addrlen
            withUnsafeMutableBytes(of: &storage) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(length)))
            }
            let endpoint = Endpoint(storage: storage, length: length, port: port)
            if !result.contains(where: { $0.host == endpoint.host }) { result.append(endpoint) }
            entry = current.pointee.ai_next
        }
        return result.sorted { $0.family == AF_INET && $1.family != AF_INET }
    }

    init(storage: sockaddr_storage, length: socklen_t, port: UInt16) {
        self.storage = storage
        self.length = length
        self.port = port
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = storage
        _ = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST)
            }
        }
        host = string(fromC: text)
    }

    /// The endpoint of a socket address (recvfrom, getsockname).
    init(_ storage: sockaddr_storage, length: socklen_t) {
        var copy = storage
        let port: UInt16 = withUnsafePointer(to: &copy) { pointer in
            if Int32(storage.ss_family) == AF_INET {
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt16(bigEndian: $0.pointee.sin_port)
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                UInt16(bigEndian: $0.pointee.sin6_port)
            }
        }
        self.init(storage: storage, length: length, port: port)
    }
}

/// The addresses of this machine's interfaces (to tell whether a name leads here).
public func localAddresses() -> Set<String> {
    var result: Set<String> = []
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return result }
    defer { freeifaddrs(list) }
    var entry = list
    while let current = entry {
        if let address = current.pointee.ifa_addr,
            Int32(address.pointee.sa_family) == AF_INET || Int32(address.pointee.sa_family) == AF_INET6
        {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(
                Int32(address.pointee.sa_family) == AF_INET
                    ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                result.insert(string(fromC: text).split(separator: "%").first.map(String.init) ?? "")
            }
        }
        entry = current.pointee.ifa_next
    }
    return result
}

/// A byte stream with deadlines: TCP, or TLS or Shadowsocks over another stream.
public protocol ByteStream: AnyObject {
    func write(_ bytes: [UInt8], deadline: Deadline) throws(NetError)
    /// At least one byte, or `.closed`.
    func read(deadline: Deadline) throws(NetError) -> [UInt8]
    func close()
}

/// A non-blocking socket used with poll(2) and a deadline per call.
public final class Socket: ByteStream {
    let fd: Int32
    /// What it talks to, for messages.
    public let peer: Endpoint

    private init(fd: Int32, peer: Endpoint) {
        self.fd = fd
        self.peer = peer
    }

    deinit { close() }

    private var closed = false

    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
    }

    private static func open(_ endpoint: Endpoint, datagram: Bool) throws(NetError) -> Int32 {
        #if canImport(Glibc)
            let type =
                Int32((datagram ? SOCK_DGRAM : SOCK_STREAM).rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                | Int32(SOCK_CLOEXEC.rawValue)
        #endif
        let fd = socket(endpoint.family, type, 0)
        guard fd >= 0 else { throw .system("socket: \(errnoText())") }
        return fd
    }

    /// Connects to each address of `host` in turn; the first that accepts wins. The failure of the last one
    /// is thrown (refused is preferred over a timeout, as it says more).
    public static func connect(host: String, port: UInt16, deadline: Deadline) throws(NetError) -> Socket {
        let endpoints = try Endpoint.resolve(host, port: port, datagram: false)
        var failure = NetError.unresolvable(host)
        for endpoint in endpoints {
            do {
                return try connect(endpoint, deadline: deadline)
            } catch {
                if case .timeout = failure, case .refused = error { continue }
                failure = error
            }
        }
        throw failure
    }

    public static func connect(_ endpoint: Endpoint, deadline: Deadline) throws(NetError) -> Socket {
        let fd = try open(endpoint, datagram: false)
        let socket = Socket(fd: fd, peer: endpoint)
        var storage = endpoint.storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, endpoint.length) }
        }
        if result != 0 {
            guard errno == EINPROGRESS else { throw socket.failure(errno, "\(endpoint)") }
            try socket.wait(for: Int16(POLLOUT), deadline: deadline, what: "\(endpoint) (TCP connect)")
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { throw socket.failure(error, "\(endpoint)") }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return socket
    }

    /// A UDP socket connected to `endpoint`, so ICMP errors come back as ECONNREFUSED.
    public static func udp(_ endpoint: Endpoint) throws(NetError) -> Socket {
        let fd = try open(endpoint, datagram: true)
        let socket = Socket(fd: fd, peer: endpoint)
        var storage = endpoint.storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, endpoint.length) }
        }
        guard result == 0 else { throw socket.failure(errno, "\(endpoint)") }
        return socket
    }

    /// This socket's own address.
    public var localEndpoint: Endpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return ok == 0 ? Endpoint(storage, length: length) : nil
    }

    private func failure(_ code: Int32, _ what: String) -> NetError {
        switch code {
        case ECONNREFUSED: .refused(what)
        case ETIMEDOUT: .timeout(what)
        case ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, ENETDOWN, EHOSTDOWN:
            .unreachable(what, String(cString: strerror(code)))
        case ECONNRESET, EPIPE: .closed(what)
        default: .system("\(what): \(String(cString: strerror(code)))")
        }
    }

    private func wait(for events: Int16, deadline: Deadline, what: String) throws(NetError) {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, deadline.pollMilliseconds)
            if ready > 0 { return }
            if ready == 0 { throw .timeout(what) }
            if errno != EINTR { throw .system("poll: \(errnoText())") }
        }
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(NetError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            guard errno == EAGAIN || errno == EINTR else { throw failure(errno, "\(peer)") }
            try wait(for: Int16(POLLOUT), deadline: deadline, what: "\(peer)")
        }
    }

    public func read(deadline: Deadline) throws(NetError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { return Array(buffer[0..<count]) }
            if count == 0 { throw .closed("\(peer)") }
            guard errno == EAGAIN || errno == EINTR else { throw failure(errno, "\(peer)") }
            try wait(for: Int16(POLLIN), deadline: deadline, what: "\(peer)")
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// The text of a NUL-terminated C buffer.
func string(fromC buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Reads from a stream into a buffer until a condition holds.
final class StreamReader {
    let stream: any ByteStream
    var buffer: [UInt8] = []

    init(_ stream: any ByteStream) { self.stream = stream }

    /// Exactly `count` bytes.
    func read(exactly count: Int, deadline: Deadline) throws(NetError) -> [UInt8] {
        while buffer.count < count { buffer += try stream.read(deadline: deadline) }
        defer { buffer.removeFirst(count) }
        return Array(buffer[0..<count])
    }

    /// One line without its CRLF (at most `limit` bytes).
    func readLine(deadline: Deadline, limit: Int = 65536) throws(NetError) -> String {
        while true {
            if let end = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[0..<end])
                buffer.removeFirst(end + 1)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count < limit else { throw .protocolError("line longer than \(limit) bytes") }
            buffer += try stream.read(deadline: deadline)
        }
    }
}
