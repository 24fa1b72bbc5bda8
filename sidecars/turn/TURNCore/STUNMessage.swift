/// A STUN message (RFC 8489 §5): type, transaction ID and attributes in wire order.
///
/// Parse with `init(parsing:options:)`, build with `init(type:transactionID:attributes:)` and `encoded(...)`.
/// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are verified on the received bytes with the
/// static `verify…` functions, since the HMAC and CRC cover the exact bytes (padding included) as sent.
public struct STUNMessage: Hashable, Sendable, CustomStringConvertible {
    /// 0x2112A442, bytes 4...7 of every RFC 5389/8489 message.
    public static let magicCookie: UInt32 = 0x2112_A442
    /// The fixed header length.
    public static let headerLength = 20
    /// The largest message the wire format allows: the 16-bit length field, rounded down to a multiple of 4.
    public static let maximumSize = 20 + 0xFFFC

    public var type: STUNMessageType
    public var transactionID: STUNTransactionID
    public var attributes: [STUNAttribute]

    public init(type: STUNMessageType, transactionID: STUNTransactionID, attributes: [STUNAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// `method` and `class` of a message with the given ID and attributes.
    public init(
        method: STUNMethod, class messageClass: STUNClass, transactionID: STUNTransactionID,
        attributes: [STUNAttribute] = []
    ) {
        self.init(
            type: STUNMessageType(method: method, class: messageClass), transactionID: transactionID,
            attributes: attributes)
    }

    public var description: String {
        "\(type) \(transactionID) [" + attributes.map { "\($0.type)" }.joined(separator: ", ") + "]"
    }

    // MARK: Typed access (the first occurrence wins, as RFC 8489 §14 allows)

    public var mappedAddress: STUNAddress? {
        first { if case .mappedAddress(let a) = $0 { a } else { nil } }
    }
    public var xorMappedAddress: STUNAddress? {
        first { if case .xorMappedAddress(let a) = $0 { a } else { nil } }
    }
    public var username: String? {
        first { if case .username(let s) = $0 { s } else { nil } }
    }
    public var userhash: [UInt8]? {
        first { if case .userhash(let b) = $0 { b } else { nil } }
    }
    public var messageIntegrity: [UInt8]? {
        first { if case .messageIntegrity(let b) = $0 { b } else { nil } }
    }
    public var messageIntegritySHA256: [UInt8]? {
        first { if case .messageIntegritySHA256(let b) = $0 { b } else { nil } }
    }
    public var fingerprint: UInt32? {
        first { if case .fingerprint(let v) = $0 { v } else { nil } }
    }
    public var errorCode: STUNErrorCode? {
        first { if case .errorCode(let e) = $0 { e } else { nil } }
    }
    public var realm: String? {
        first { if case .realm(let s) = $0 { s } else { nil } }
    }
    public var nonce: String? {
        first { if case .nonce(let s) = $0 { s } else { nil } }
    }
    public var passwordAlgorithms: [STUNPasswordAlgorithm]? {
        first { if case .passwordAlgorithms(let list) = $0 { list } else { nil } }
    }
    public var passwordAlgorithm: STUNPasswordAlgorithm? {
        first { if case .passwordAlgorithm(let a) = $0 { a } else { nil } }
    }
    public var unknownAttributes: [STUNAttributeType]? {
        first { if case .unknownAttributes(let list) = $0 { list } else { nil } }
    }
    public var software: String? {
        first { if case .software(let s) = $0 { s } else { nil } }
    }
    public var alternateServer: STUNAddress? {
        first { if case .alternateServer(let a) = $0 { a } else { nil } }
    }
    public var channelNumber: UInt16? {
        first { if case .channelNumber(let n) = $0 { n } else { nil } }
    }
    public var lifetime: UInt32? {
        first { if case .lifetime(let n) = $0 { n } else { nil } }
    }
    /// Every XOR-PEER-ADDRESS, in order.
    public var xorPeerAddresses: [STUNAddress] {
        attributes.compactMap { if case .xorPeerAddress(let a) = $0 { a } else { nil } }
    }
    public var data: [UInt8]? {
        first { if case .data(let b) = $0 { b } else { nil } }
    }
    /// Every XOR-RELAYED-ADDRESS, in order.
    public var xorRelayedAddresses: [STUNAddress] {
        attributes.compactMap { if case .xorRelayedAddress(let a) = $0 { a } else { nil } }
    }
    public var requestedAddressFamily: STUNAddressFamily? {
        first { if case .requestedAddressFamily(let f) = $0 { f } else { nil } }
    }
    /// The R bit of EVEN-PORT, or nil without the attribute.
    public var evenPort: Bool? {
        first { if case .evenPort(let r) = $0 { r } else { nil } }
    }
    public var requestedTransport: UInt8? {
        first { if case .requestedTransport(let p) = $0 { p } else { nil } }
    }
    public var dontFragment: Bool {
        attributes.contains { if case .dontFragment = $0 { true } else { false } }
    }
    public var reservationToken: UInt64? {
        first { if case .reservationToken(let t) = $0 { t } else { nil } }
    }
    public var additionalAddressFamily: STUNAddressFamily? {
        first { if case .additionalAddressFamily(let f) = $0 { f } else { nil } }
    }
    /// Every ADDRESS-ERROR-CODE, in order.
    public var addressErrorCodes: [(family: STUNAddressFamily, error: STUNErrorCode)] {
        attributes.compactMap { if case .addressErrorCode(let f, let e) = $0 { (f, e) } else { nil } }
    }
    public var icmp: STUNICMP? {
        first { if case .icmp(let i) = $0 { i } else { nil } }
    }

    /// The first attribute of `type`, raw or decoded.
    public func attribute(_ type: STUNAttributeType) -> STUNAttribute? {
        attributes.first { $0.type == type }
    }

    /// Comprehension-required attributes TURNCore does not decode, each type once, in order of appearance.
    /// A server answers a request that has any with 420 and lists them in UNKNOWN-ATTRIBUTES; ICE's PRIORITY
    /// and USE-CANDIDATE land here too, which is right for a TURN server.
    public var unknownComprehensionRequiredAttributes: [STUNAttributeType] {
        var seen: [STUNAttributeType] = []
        for case .other(let type, _) in attributes where type.isComprehensionRequired && !seen.contains(type) {
            seen.append(type)
        }
        return seen
    }

    private func first<T>(_ extract: (STUNAttribute) -> T?) -> T? {
        for attribute in attributes {
            if let value = extract(attribute) { return value }
        }
        return nil
    }
}
