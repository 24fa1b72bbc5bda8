import ChatmailConfig
import TURNCore

/// Everything `[turn]` says, checked before a socket is opened (as pion/turn validates its whole configuration
/// first): peer ranges, relay and external addresses, listen hosts. `chatmailctl check-config` builds the same
/// value, so a file it accepts is one this child starts with. Errors carry the file, line and key.
public struct TURNSettings: Sendable {
    public var section: TURNSection
    var relay: RelaySettings
    var allowedPeers: [IPRange]
    var deniedPeers: [IPRange]

    public init(configuration: Configuration) throws(ConfigurationErrors) {
        let turn = configuration.turn
        var errors: [ConfigurationError] = []
        func fail(_ key: String, _ message: String) { errors.append(configuration.error("turn", key, message)) }
        func ranges(_ texts: [String], _ key: String) -> [IPRange] {
            texts.compactMap { text in
                guard let range = IPRange(text) else {
                    fail(key, "\"\(text)\" is not an address or a prefix")
                    return nil
                }
                return range
            }
        }
        section = turn
        allowedPeers = ranges(turn.allowedPeers, "allowed_peers")
        deniedPeers = ranges(turn.deniedPeers, "denied_peers")
        for (key, host) in [("listen", turn.listen.host), ("tls_listen", turn.tlsListen.host)]
        where STUNAddress(host: host, port: 0) == nil {
            fail(key, "\"\(host)\" is not an IP address")
        }
        relay = Self.relaySettings(turn, fail: fail)
        if !errors.isEmpty { throw ConfigurationErrors(errors: errors) }
    }

    /// Where relayed sockets bind, per family, and what clients are told.
    static func relaySettings(_ turn: TURNSection, fail: (String, String) -> Void) -> RelaySettings {
        var external: [STUNAddressFamily: STUNAddress] = [:]
        for text in turn.externalAddresses {
            guard let address = STUNAddress(host: text, port: 0), !address.isWildcard else {
                fail("external_addresses", "\"\(text)\" is not a usable IP address")
                continue
            }
            external[address.family] = address
        }
        var relayBind: [STUNAddressFamily: (bind: STUNAddress, advertised: STUNAddress)] = [:]
        for text in turn.relayAddresses {
            guard let bind = STUNAddress(host: text, port: 0) else {
                fail("relay_addresses", "\"\(text)\" is not an IP address")
                continue
            }
            var advertised = external[bind.family] ?? bind
            if advertised.isWildcard {
                guard let host = STUNAddress(host: turn.host, port: 0), host.family == bind.family else {
                    fail(
                        "relay_addresses",
                        "\(text) is a wildcard; set external_addresses (or an IP as host) so clients learn a "
                            + "reachable relayed address")
                    continue
                }
                advertised = host
            }
            relayBind[bind.family] = (bind, advertised)
        }
        if turn.relayAddresses.isEmpty { fail("relay_addresses", "at least one address is needed") }
        return RelaySettings(relayBind: relayBind, relayPorts: turn.relayPorts)
    }
}

extension STUNAddress {
    /// 0.0.0.0 or ::.
    var isWildcard: Bool { ipv4 == 0 || (ipv6.map { $0.high == 0 && $0.low == 0 } ?? false) }
}
