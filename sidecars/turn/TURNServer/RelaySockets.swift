import ChatmailCrypto
import Synchronization
import TURNCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Settings every loop and shard shares, derived once from the configuration.
struct RelaySettings: Sendable {
    /// Per family: the address relayed sockets bind to and the one advertised to clients.
    var relayBind: [STUNAddressFamily: (bind: STUNAddress, advertised: STUNAddress)]
    var relayPorts: ClosedRange<UInt16>

    /// Attempts at binding a relayed socket (or an even pair) to random free ports.
    static let bindAttempts = 16

    /// The relayed sockets for `pending`, one per family (or the one reserved under its RESERVATION-TOKEN), and
    /// the token of the port reserved for EVEN-PORT with R. On failure nothing stays open.
    func open(for pending: PendingAllocation, reservations: RelayReservations, now: Int64) throws
        -> (relays: [BoundRelay], reservationToken: UInt64?)
    {
        if let token = pending.reservationToken {
            guard let relay = reservations.take(token, now: now) else { throw TURNServerError.noReservation }
            // Bound with the first Allocate's options; DONT-FRAGMENT is this one's to ask for.
            if pending.dontFragment {
                let option = Self.dontFragment(family: relay.address.family)
                var value = option.value
                setsockopt(relay.fd, option.level, option.name, &value, socklen_t(MemoryLayout<Int32>.size))
            }
            return ([relay], nil)
        }
        var relays: [BoundRelay] = []
        var token: UInt64?
        do {
            for family in pending.families {
                // Only the first family's port gets a reserved neighbour: one token per response.
                let reserve = pending.reserveNextPort && relays.isEmpty
                let (relay, reserved) = try bind(family: family, even: pending.evenPort || reserve,
                                                 reserveNext: reserve, dontFragment: pending.dontFragment)
                relays.append(relay)
                if let reserved { token = reservations.reserve(reserved, now: now) }
            }
        } catch {
            for relay in relays { Glibc.close(relay.fd) }
            if let token, let reserved = reservations.take(token, now: now) { Glibc.close(reserved.fd) }
            throw error
        }
        return (relays, token)
    }

    /// A relayed socket of `family` on a random free port of the range (even when asked), with the next port
    /// bound too when `reserveNext`.
    private func bind(family: STUNAddressFamily, even: Bool, reserveNext: Bool, dontFragment: Bool) throws
        -> (relay: BoundRelay, reserved: BoundRelay?)
    {
        guard let addresses = relayBind[family] else { throw TURNServerError.noRelayAddress }
        let options = Self.socketOptions(family: family, dontFragment: dontFragment)
        var failure: any Error = TURNServerError.noRelayAddress
        for _ in 0..<Self.bindAttempts {
            var port = UInt16.random(in: relayPorts)
            if even {
                port &= ~1
                if port < relayPorts.lowerBound { port += 2 }
            }
            guard !reserveNext || port < relayPorts.upperBound else { continue }
            do {
                let relay = try bind(addresses, port: port, options: options)
                guard reserveNext else { return (relay, nil) }
                do {
                    return (relay, try bind(addresses, port: port + 1, options: options))
                } catch {
                    Glibc.close(relay.fd)
                    throw error
                }
            } catch {
                failure = error
            }
        }
        throw failure
    }

    private func bind(_ addresses: (bind: STUNAddress, advertised: STUNAddress), port: UInt16,
                      options: [(level: Int32, name: Int32, value: Int32)]) throws -> BoundRelay {
        var bind = addresses.bind
        bind.port = port
        var advertised = addresses.advertised
        advertised.port = port
        let fd = try openUDPSocket(family: bind.family, options: options)
        guard bind.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TURNServerError.system("binding relay \(bind)", error)
        }
        return BoundRelay(fd: fd, address: advertised)
    }

    /// The socket options of a relayed socket: IPv6 relays take no IPv4 traffic; DONT-FRAGMENT sets
    /// IP_MTU_DISCOVER / IPV6_MTU_DISCOVER to *_PMTUDISC_DO (set DF, never fragment locally).
    static func socketOptions(family: STUNAddressFamily, dontFragment: Bool)
        -> [(level: Int32, name: Int32, value: Int32)]
    {
        var options: [(level: Int32, name: Int32, value: Int32)] = []
        if family == .ipv6 { options.append((Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)) }
        if dontFragment { options.append(Self.dontFragment(family: family)) }
        return options
    }

    private static func dontFragment(family: STUNAddressFamily) -> (level: Int32, name: Int32, value: Int32) {
        family == .ipv6 ? (Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, 2) : (Int32(IPPROTO_IP), IP_MTU_DISCOVER, 2)
    }
}

/// A bound relayed socket and the address clients are told for it.
struct BoundRelay: Sendable {
    let fd: Int32
    let address: STUNAddress
}

/// Ports reserved by EVEN-PORT with R, until an Allocate with the token takes them or 30 s pass (RFC 8656 §7.2).
/// Shared by every shard and loop: the second Allocate may come from another client port, so another thread.
final class RelayReservations: Sendable {
    private struct Reservation {
        let relay: BoundRelay
        let expiry: Int64
    }
    private static let lifetime: Int64 = 30
    private let reservations = Mutex<[UInt64: Reservation]>([:])

    /// Keeps `relay` and returns its token.
    func reserve(_ relay: BoundRelay, now: Int64) -> UInt64 {
        reservations.withLock { reservations in
            var token: UInt64 = 0
            repeat {
                withUnsafeMutableBytes(of: &token) { Crypto.randomBytes(into: $0) }
            } while reservations[token] != nil
            reservations[token] = Reservation(relay: relay, expiry: now + Self.lifetime)
            return token
        }
    }

    /// The relay reserved under `token`, now the caller's, or nil if there is none (or it expired).
    func take(_ token: UInt64, now: Int64) -> BoundRelay? {
        guard let reservation = reservations.withLock({ $0.removeValue(forKey: token) }) else { return nil }
        guard reservation.expiry > now else {
            Glibc.close(reservation.relay.fd)
            return nil
        }
        return reservation.relay
    }

    /// Closes the reservations that expired (or all of them).
    func sweep(now: Int64 = .max) {
        let expired = reservations.withLock { reservations in
            let expired = reservations.filter { $0.value.expiry <= now }
            for token in expired.keys { reservations[token] = nil }
            return expired.values.map(\.relay.fd)
        }
        for fd in expired { Glibc.close(fd) }
    }
}

/// A non-blocking, close-on-exec UDP socket of `family` with `options` set.
func openUDPSocket(family: STUNAddressFamily, options: [(level: Int32, name: Int32, value: Int32)]) throws -> Int32 {
    let domain = family == .ipv4 ? AF_INET : AF_INET6
    let fd = socket(domain, Int32(SOCK_DGRAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TURNServerError.system("socket", errno) }
    for option in options {
        var value = option.value
        guard setsockopt(fd, option.level, option.name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw TURNServerError.system("setsockopt(\(option.level), \(option.name))", error)
        }
    }
    return fd
}
