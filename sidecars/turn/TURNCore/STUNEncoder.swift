import ChatmailCrypto

/// Why a message could not be encoded. Anything `encoded(...)` returns parses back to the same message.
public enum STUNEncodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message would exceed 65552 bytes (the 16-bit length field) or an attribute value 65535 bytes.
    case messageTooLarge(Int)
    /// A value breaks a bound the parser enforces (USERHASH not 32 bytes, text too long, `.other` with a type
    /// TURNCore decodes, ...).
    case invalidAttribute(STUNAttributeType)
    /// The attribute order breaks the MESSAGE-INTEGRITY / FINGERPRINT rules, including asking for an integrity
    /// attribute or FINGERPRINT the list already ends with.
    case invalidOrder(STUNParseError)
    /// A MESSAGE-INTEGRITY-SHA256 length other than 16, 20, 24, 28 or 32.
    case invalidIntegrityLength(Int)

    public var description: String {
        switch self {
        case .messageTooLarge(let size): "STUN message of \(size) bytes is too large"
        case .invalidAttribute(let type): "\(type) cannot be encoded as given"
        case .invalidOrder(let error): "attribute order: \(error)"
        case .invalidIntegrityLength(let length): "MESSAGE-INTEGRITY-SHA256 cannot be \(length) bytes"
        }
    }
}

/// Which integrity attributes to append, and the key. The key is the short-term password or the long-term key
/// (`STUNCredentials.longTermKey`); RFC 8489 uses the same key for both attributes.
public struct STUNIntegrity: Hashable, Sendable {
    public var key: [UInt8]
    /// Append MESSAGE-INTEGRITY (HMAC-SHA1).
    public var sha1: Bool
    /// Append MESSAGE-INTEGRITY-SHA256 of this many bytes (16...32, a multiple of 4), or not at all.
    public var sha256Length: Int?

    public init(key: [UInt8], sha1: Bool, sha256Length: Int?) {
        self.key = key
        self.sha1 = sha1
        self.sha256Length = sha256Length
    }

    /// MESSAGE-INTEGRITY only.
    public static func sha1(key: [UInt8]) -> STUNIntegrity {
        STUNIntegrity(key: key, sha1: true, sha256Length: nil)
    }

    /// MESSAGE-INTEGRITY-SHA256 only, `length` bytes (32 unless the peer asked for truncation).
    public static func sha256(key: [UInt8], length: Int = 32) -> STUNIntegrity {
        STUNIntegrity(key: key, sha1: false, sha256Length: length)
    }

    /// Both, MESSAGE-INTEGRITY first, as a server answering a client that sent both does.
    public static func both(key: [UInt8], sha256Length: Int = 32) -> STUNIntegrity {
        STUNIntegrity(key: key, sha1: true, sha256Length: sha256Length)
    }
}

extension STUNMessage {
    /// The XOR constant of FINGERPRINT ("STUN").
    public static let fingerprintXOR: UInt32 = 0x5354_554E

    /// Encodes the message: the attributes as they are (an integrity or FINGERPRINT attribute already in the
    /// list is written verbatim), then freshly computed MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 if
    /// `integrity` asks for them, then FINGERPRINT if `fingerprint` is set.
    ///
    /// - Parameter padding: the byte that pads attribute values to 4 bytes. RFC 8489 §14 says zero; other values
    ///   exist only to reproduce RFC 5769's samples, which pad with spaces (0x20).
    public func encoded(
        integrity: STUNIntegrity? = nil, fingerprint: Bool = false, padding: UInt8 = 0
    ) throws(STUNEncodeError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(estimatedSize + 100)
        out.appendUInt16(type.rawValue)
        out.appendUInt16(0)
        out.appendUInt32(STUNMessage.magicCookie)
        out.appendUInt32(transactionID.high)
        out.appendUInt64(transactionID.low)

        var order = IntegrityOrder()
        func accept(_ type: STUNAttributeType) throws(STUNEncodeError) {
            do { try order.accept(type) } catch { throw .invalidOrder(error) }
        }
        func checkSize(_ extra: Int) throws(STUNEncodeError) {
            guard out.count + extra <= STUNMessage.maximumSize else { throw .messageTooLarge(out.count + extra) }
        }

        for attribute in attributes {
            try accept(attribute.type)
            let start = out.count
            out.appendUInt16(attribute.type.rawValue)
            out.appendUInt16(0)
            try attribute.appendValue(to: &out, transactionID: transactionID)
            let length = out.count - start - 4
            guard length <= 0xFFFF else { throw .messageTooLarge(out.count) }
            out.setUInt16(UInt16(length), at: start + 2)
            for _ in length..<paddedTo4(length) { out.append(padding) }
            try checkSize(0)
        }

        if let integrity {
            if integrity.sha1 {
                try accept(.messageIntegrity)
                try checkSize(24)
                out.setUInt16(UInt16(out.count - 20 + 24), at: 2)
                let mac = Crypto.hmacSHA1(key: integrity.key, message: out)
                out.appendUInt16(STUNAttributeType.messageIntegrity.rawValue)
                out.appendUInt16(20)
                out.append(contentsOf: mac)
            }
            if let length = integrity.sha256Length {
                guard (16...32).contains(length), length & 3 == 0 else { throw .invalidIntegrityLength(length) }
                try accept(.messageIntegritySHA256)
                try checkSize(4 + length)
                out.setUInt16(UInt16(out.count - 20 + 4 + length), at: 2)
                let mac = Crypto.hmacSHA256(key: integrity.key, message: out)
                out.appendUInt16(STUNAttributeType.messageIntegritySHA256.rawValue)
                out.appendUInt16(UInt16(length))
                out.append(contentsOf: mac.prefix(length))
            }
        }

        if fingerprint {
            try accept(.fingerprint)
            try checkSize(8)
            out.setUInt16(UInt16(out.count - 20 + 8), at: 2)
            let crc = CRC32.checksum(out) ^ STUNMessage.fingerprintXOR
            out.appendUInt16(STUNAttributeType.fingerprint.rawValue)
            out.appendUInt16(4)
            out.appendUInt32(crc)
        }

        out.setUInt16(UInt16(out.count - 20), at: 2)
        return out
    }

    /// A rough size for reserving capacity.
    private var estimatedSize: Int {
        var size = 20
        for attribute in attributes {
            switch attribute {
            case .data(let bytes), .other(_, let bytes): size += 8 + bytes.count
            default: size += 32
            }
        }
        return size
    }
}

extension STUNAttribute {
    /// Appends the value (without header or padding), refusing anything the parser would refuse.
    func appendValue(to out: inout [UInt8], transactionID: STUNTransactionID) throws(STUNEncodeError) {
        func text(_ string: String, maximum: Int) throws(STUNEncodeError) {
            guard string.utf8.count <= maximum else { throw .invalidAttribute(type) }
            out.append(contentsOf: string.utf8)
        }
        func errorCode(_ error: STUNErrorCode, family: STUNAddressFamily?) {
            out.append(family?.rawValue ?? 0)
            out.append(0)
            out.append(UInt8(error.code / 100))
            out.append(UInt8(error.code % 100))
            out.append(contentsOf: error.reason.utf8)
        }
        func familyWord(_ family: STUNAddressFamily) {
            out.append(family.rawValue)
            out.append(contentsOf: [0, 0, 0])
        }
        func algorithm(_ algorithm: STUNPasswordAlgorithm) throws(STUNEncodeError) {
            guard algorithm.parameters.count <= 0xFFFF else { throw .invalidAttribute(type) }
            out.appendUInt16(algorithm.number)
            out.appendUInt16(UInt16(algorithm.parameters.count))
            out.append(contentsOf: algorithm.parameters)
            for _ in algorithm.parameters.count..<paddedTo4(algorithm.parameters.count) { out.append(0) }
        }

        switch self {
        case .mappedAddress(let address), .alternateServer(let address):
            address.append(to: &out, xor: nil)
        case .xorMappedAddress(let address), .xorPeerAddress(let address), .xorRelayedAddress(let address):
            address.append(to: &out, xor: transactionID)
        case .username(let string):
            try text(string, maximum: STUNLimits.maximumUsernameLength)
        case .realm(let string), .nonce(let string), .software(let string):
            try text(string, maximum: STUNLimits.maximumTextLength)
        case .userhash(let bytes):
            guard bytes.count == 32 else { throw .invalidAttribute(type) }
            out.append(contentsOf: bytes)
        case .messageIntegrity(let bytes):
            guard bytes.count == 20 else { throw .invalidAttribute(type) }
            out.append(contentsOf: bytes)
        case .messageIntegritySHA256(let bytes):
            guard (16...32).contains(bytes.count), bytes.count & 3 == 0 else { throw .invalidAttribute(type) }
            out.append(contentsOf: bytes)
        case .fingerprint(let value):
            out.appendUInt32(value)
        case .errorCode(let error):
            errorCode(error, family: nil)
        case .addressErrorCode(let family, let error):
            errorCode(error, family: family)
        case .passwordAlgorithms(let list):
            for entry in list { try algorithm(entry) }
        case .passwordAlgorithm(let entry):
            try algorithm(entry)
        case .unknownAttributes(let types):
            for attributeType in types { out.appendUInt16(attributeType.rawValue) }
        case .channelNumber(let number):
            out.appendUInt16(number)
            out.appendUInt16(0)
        case .lifetime(let seconds):
            out.appendUInt32(seconds)
        case .data(let bytes):
            out.append(contentsOf: bytes)
        case .requestedAddressFamily(let family), .additionalAddressFamily(let family):
            familyWord(family)
        case .evenPort(let reserveNextPort):
            out.append(reserveNextPort ? 0x80 : 0)
        case .requestedTransport(let protocolNumber):
            out.append(protocolNumber)
            out.append(contentsOf: [0, 0, 0])
        case .dontFragment:
            break
        case .reservationToken(let token):
            out.appendUInt64(token)
        case .icmp(let icmp):
            out.appendUInt16(0)
            out.appendUInt16(UInt16(icmp.type) << 9 | icmp.code)
            out.appendUInt32(icmp.errorData)
        case .other(let otherType, let bytes):
            guard !otherType.isDecodedByTURNCore else { throw .invalidAttribute(otherType) }
            out.append(contentsOf: bytes)
        }
    }
}
