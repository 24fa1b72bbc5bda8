import ChatmailCrypto

/// The Data indication (RFC 8656 §11.4) that carries a peer's datagram to a client without a channel: a STUN
/// header, XOR-PEER-ADDRESS and DATA. The I/O layer writes the header right in front of the payload it received,
/// so relaying needs no copy and no allocation.
public enum DataIndication {
    /// Bytes in front of the payload: 20 header, XOR-PEER-ADDRESS (4 + 8 or 20), DATA's type and length (4).
    @inline(__always)
    public static func headerLength(peer: STUNAddress) -> Int {
        peer.family == .ipv4 ? 36 : 48
    }

    /// Zero bytes after the payload, to a multiple of 4.
    @inline(__always)
    public static func paddingLength(payload length: Int) -> Int {
        (4 - length & 3) & 3
    }

    /// Writes the header for `length` bytes from `peer` to `header`, which has `headerLength(peer:)` bytes.
    @inline(__always)
    public static func writeHeader(
        to header: UnsafeMutableRawPointer, peer: STUNAddress, length: Int, transactionID id: STUNTransactionID
    ) {
        let addressLength = peer.family == .ipv4 ? 8 : 20
        let attributesLength = 4 + addressLength + 4 + length + paddingLength(payload: length)
        func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
            header.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Value.self)
        }
        put(STUNMessageType.dataIndication.rawValue, at: 0)
        put(UInt16(attributesLength), at: 2)
        put(STUNMessage.magicCookie, at: 4)
        put(id.high, at: 8)
        put(id.low, at: 12)
        put(STUNAttributeType.xorPeerAddress.rawValue, at: 20)
        put(UInt16(addressLength), at: 22)
        put(UInt8(0), at: 24)
        put(peer.family.rawValue, at: 25)
        put(peer.port ^ UInt16(STUNMessage.magicCookie >> 16), at: 26)
        if let v4 = peer.ipv4 {
            put(v4 ^ STUNMessage.magicCookie, at: 28)
        } else {
            let (high, low) = peer.ipv6!
            put(high ^ (UInt64(STUNMessage.magicCookie) << 32 | UInt64(id.high)), at: 28)
            put(low ^ id.low, at: 36)
        }
        put(STUNAttributeType.data.rawValue, at: 20 + 4 + addressLength)
        put(UInt16(length), at: 20 + 4 + addressLength + 2)
    }
}

/// Transaction IDs for Data indications: a random base and a counter make them unique without a random draw each.
public struct IndicationIDs: Sendable {
    private let high: UInt32
    private var counter: UInt64

    public init() {
        var seed: (UInt32, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &seed) { Crypto.randomBytes(into: $0) }
        (high, counter) = seed
    }

    public mutating func next() -> STUNTransactionID {
        counter &+= 1
        return STUNTransactionID(high: high, low: counter)
    }
}
