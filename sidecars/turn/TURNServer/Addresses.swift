import NIOCore
import TURNCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension STUNAddress {
    /// The IP and port of a NIO socket address; nil for Unix sockets. Reads the sockaddr in place.
    @inline(__always)
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr), port: UInt16(bigEndian: v4.address.sin_port))
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &raw) { bytes in
                (
                    UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                )
            }
            self.init(ipv6High: high, low: low, port: UInt16(bigEndian: v6.address.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }
}

extension STUNAddress {
    /// The IP and port of a `sockaddr_in` or `sockaddr_in6`; nil for other families.
    @inline(__always)
    init?(sockaddr: UnsafePointer<sockaddr>) {
        switch Int32(sockaddr.pointee.sa_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(sockaddr).loadUnaligned(as: sockaddr_in.self)
            self.init(ipv4: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let raw = UnsafeRawPointer(sockaddr)
            let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
            let address = raw + MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
            self.init(
                ipv6High: UInt64(bigEndian: address.loadUnaligned(as: UInt64.self)),
                low: UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }

    /// Writes this address as a `sockaddr_in` or `sockaddr_in6` to `sockaddr` (which has room for either) and
    /// returns its length.
    @inline(__always)
    func write(to sockaddr: UnsafeMutablePointer<sockaddr>) -> socklen_t {
        let raw = UnsafeMutableRawPointer(sockaddr)
        if let v4 = ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = v4.bigEndian
            raw.storeBytes(of: sin, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let (high, low) = ipv6!
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { bytes in
            bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        raw.storeBytes(of: sin6, as: sockaddr_in6.self)
        return socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Calls `body` with this address as a socket address.
    func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var storage = sockaddr_storage()
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                body(address, write(to: address))
            }
        }
    }
}

extension SocketAddress {
    /// The NIO form of a STUN address, built without resolving or formatting anything.
    init(_ address: STUNAddress) {
        self = address.withSockaddr { pointer, _ in
            let raw = UnsafeRawPointer(pointer)
            return address.ipv4 != nil
                ? SocketAddress(raw.load(as: sockaddr_in.self), host: "")
                : SocketAddress(raw.load(as: sockaddr_in6.self), host: "")
        }
    }
}
