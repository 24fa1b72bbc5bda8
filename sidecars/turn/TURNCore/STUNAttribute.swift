/// One STUN or TURN attribute, decoded.
///
/// Address attributes hold the plain address: XOR-…-ADDRESS values are XORed with the magic cookie (and, for
/// IPv6, the transaction ID) on the wire, and the codec undoes and redoes that with the message's transaction ID.
/// Text attributes are UTF-8 on the wire and must be valid UTF-8 to parse; Swift strings keep their exact bytes,
/// so `Array(username.utf8)` is what the peer sent. Reserved bits and padding are ignored when parsing and
/// written as zero.
public enum STUNAttribute: Hashable, Sendable {
    // RFC 8489
    case mappedAddress(STUNAddress)
    case xorMappedAddress(STUNAddress)
    /// At most 513 bytes of UTF-8 (RFC 8489 asks for fewer than 509; 513 is RFC 5389's bound).
    case username(String)
    /// 32 bytes: SHA-256 of `username ":" realm` (RFC 8489 §14.4).
    case userhash([UInt8])
    /// 20 bytes of HMAC-SHA1.
    case messageIntegrity([UInt8])
    /// 16 to 32 bytes (a multiple of 4) of HMAC-SHA256, possibly truncated (RFC 8489 §14.6).
    case messageIntegritySHA256([UInt8])
    /// CRC-32 of the message up to this attribute, XORed with 0x5354554E.
    case fingerprint(UInt32)
    case errorCode(STUNErrorCode)
    /// At most 763 bytes of UTF-8.
    case realm(String)
    /// At most 763 bytes of UTF-8.
    case nonce(String)
    case passwordAlgorithms([STUNPasswordAlgorithm])
    case passwordAlgorithm(STUNPasswordAlgorithm)
    case unknownAttributes([STUNAttributeType])
    /// At most 763 bytes of UTF-8.
    case software(String)
    case alternateServer(STUNAddress)

    // RFC 8656 (TURN)
    /// The channel number as sent; the server checks the 0x4000...0x7FFE range (400 otherwise).
    case channelNumber(UInt16)
    /// Seconds.
    case lifetime(UInt32)
    /// May appear several times (CreatePermission).
    case xorPeerAddress(STUNAddress)
    case data([UInt8])
    /// May appear twice (dual-stack allocations).
    case xorRelayedAddress(STUNAddress)
    case requestedAddressFamily(STUNAddressFamily)
    /// The R bit: also reserve the next-higher port.
    case evenPort(reserveNextPort: Bool)
    /// An IANA protocol number: 17 for UDP, 6 for TCP (RFC 6062).
    case requestedTransport(UInt8)
    case dontFragment
    /// 8 opaque bytes from an earlier EVEN-PORT allocation, as a big-endian integer.
    case reservationToken(UInt64)
    case additionalAddressFamily(STUNAddressFamily)
    case addressErrorCode(family: STUNAddressFamily, error: STUNErrorCode)
    case icmp(STUNICMP)

    /// Any other attribute, kept raw: unknown comprehension-optional ones (ICE's ICE-CONTROLLED, libwebrtc's
    /// 0xFF05 TURN-LOGGING-ID) and unknown comprehension-required ones, which `STUNMessage` reports for 420.
    /// Never holds a type TURNCore decodes (`STUNAttributeType.isDecodedByTURNCore`); encoding refuses that.
    case other(STUNAttributeType, [UInt8])

    /// The attribute's type number.
    public var type: STUNAttributeType {
        switch self {
        case .mappedAddress: .mappedAddress
        case .xorMappedAddress: .xorMappedAddress
        case .username: .username
        case .userhash: .userhash
        case .messageIntegrity: .messageIntegrity
        case .messageIntegritySHA256: .messageIntegritySHA256
        case .fingerprint: .fingerprint
        case .errorCode: .errorCode
        case .realm: .realm
        case .nonce: .nonce
        case .passwordAlgorithms: .passwordAlgorithms
        case .passwordAlgorithm: .passwordAlgorithm
        case .unknownAttributes: .unknownAttributes
        case .software: .software
        case .alternateServer: .alternateServer
        case .channelNumber: .channelNumber
        case .lifetime: .lifetime
        case .xorPeerAddress: .xorPeerAddress
        case .data: .data
        case .xorRelayedAddress: .xorRelayedAddress
        case .requestedAddressFamily: .requestedAddressFamily
        case .evenPort: .evenPort
        case .requestedTransport: .requestedTransport
        case .dontFragment: .dontFragment
        case .reservationToken: .reservationToken
        case .additionalAddressFamily: .additionalAddressFamily
        case .addressErrorCode: .addressErrorCode
        case .icmp: .icmp
        case .other(let type, _): type
        }
    }
}

/// The ERROR-CODE value (RFC 8489 §14.8): a code from 300 to 699 and a reason phrase.
///
/// The server should send empty reasons (smaller responses, less fingerprinting); the constants have none.
public struct STUNErrorCode: Hashable, Sendable, CustomStringConvertible {
    /// 300...699: the class (hundreds, 3...6) and number (0...99) of the wire format.
    public let code: Int
    /// UTF-8, at most 763 bytes.
    public let reason: String

    /// Nil unless `code` is in 300...699 and `reason` fits in 763 bytes.
    public init?(code: Int, reason: String = "") {
        guard (300...699).contains(code), reason.utf8.count <= STUNLimits.maximumTextLength else { return nil }
        self.code = code
        self.reason = reason
    }

    private init(unchecked code: Int) {
        self.code = code
        self.reason = ""
    }

    /// The same code with another reason phrase (nil if it is too long).
    public func withReason(_ reason: String) -> STUNErrorCode? {
        STUNErrorCode(code: code, reason: reason)
    }

    public static let tryAlternate = STUNErrorCode(unchecked: 300)
    public static let badRequest = STUNErrorCode(unchecked: 400)
    public static let unauthenticated = STUNErrorCode(unchecked: 401)
    public static let forbidden = STUNErrorCode(unchecked: 403)
    public static let unknownAttribute = STUNErrorCode(unchecked: 420)
    public static let allocationMismatch = STUNErrorCode(unchecked: 437)
    public static let staleNonce = STUNErrorCode(unchecked: 438)
    public static let addressFamilyNotSupported = STUNErrorCode(unchecked: 440)
    public static let wrongCredentials = STUNErrorCode(unchecked: 441)
    public static let unsupportedTransportProtocol = STUNErrorCode(unchecked: 442)
    public static let peerAddressFamilyMismatch = STUNErrorCode(unchecked: 443)
    public static let allocationQuotaReached = STUNErrorCode(unchecked: 486)
    public static let serverError = STUNErrorCode(unchecked: 500)
    public static let insufficientCapacity = STUNErrorCode(unchecked: 508)

    public var description: String { reason.isEmpty ? "\(code)" : "\(code) \(reason)" }
}

/// A password algorithm of PASSWORD-ALGORITHMS / PASSWORD-ALGORITHM (RFC 8489 §14.11, §18.5).
public struct STUNPasswordAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public var number: UInt16
    /// Algorithm parameters; MD5 and SHA-256 have none.
    public var parameters: [UInt8]

    public init(number: UInt16, parameters: [UInt8] = []) {
        self.number = number
        self.parameters = parameters
    }

    /// Key = MD5(username ":" realm ":" password), the RFC 5389 default.
    public static let md5 = STUNPasswordAlgorithm(number: 0x0001)
    /// Key = SHA-256(username ":" realm ":" password).
    public static let sha256 = STUNPasswordAlgorithm(number: 0x0002)

    public var description: String {
        switch number {
        case 1: "MD5"
        case 2: "SHA-256"
        default: "algorithm 0x" + String(number, radix: 16)
        }
    }
}

/// The ICMP attribute value (RFC 8656 §18.13): what the relay learned from an ICMP error on a peer path.
///
/// Figure 11 of RFC 8656 draws a 16-bit reserved field, then ICMP Type in bits 16...22 and ICMP Code in bits
/// 23...31, then 4 bytes of Error Data. TURNCore follows the figure as drawn (a 7-bit type, a 9-bit code), which
/// holds every ICMPv4 and ICMPv6 *error* type; nobody else is known to emit this attribute, so there is no
/// deployed reading to match. Revisit if a client turns out to read type and code as whole bytes.
public struct STUNICMP: Hashable, Sendable {
    /// 0...127.
    public let type: UInt8
    /// 0...511.
    public let code: UInt16
    /// The next-hop MTU for "fragmentation needed" / "packet too big", otherwise 0.
    public let errorData: UInt32

    /// Nil if `type` > 127 or `code` > 511 (they do not fit the attribute's fields).
    public init?(type: UInt8, code: UInt16, errorData: UInt32 = 0) {
        guard type <= 0x7F, code <= 0x1FF else { return nil }
        self.type = type
        self.code = code
        self.errorData = errorData
    }
}

/// Bounds the parser enforces on attribute values.
enum STUNLimits {
    /// USERNAME (RFC 5389's 513; RFC 8489 says fewer than 509).
    static let maximumUsernameLength = 513
    /// REALM, NONCE, SOFTWARE and reason phrases: fewer than 128 characters, at most 763 bytes.
    static let maximumTextLength = 763
}
