/// Why a datagram or frame is not an acceptable STUN message. Every rule the parser enforces has a case; no input
/// traps.
public enum STUNParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Fewer than 20 bytes.
    case tooShort(Int)
    /// One of the two top bits of the first byte is set (ChannelData or not STUN at all).
    case notSTUN
    /// Bytes 4...7 are not 0x2112A442 (RFC 3489 messages are refused too).
    case badMagicCookie(UInt32)
    /// The header's length is not a multiple of 4.
    case lengthNotMultipleOfFour(Int)
    /// The header's length plus 20 is not the size of the datagram or frame.
    case lengthMismatch(header: Int, actual: Int)
    /// The message is larger than `STUNParseOptions.maximumMessageSize`.
    case messageTooLarge(Int)
    /// More attributes than `STUNParseOptions.maximumAttributeCount`.
    case tooManyAttributes(Int)
    /// An attribute header or its (padded) value runs past the end of the message.
    case truncatedAttribute(offset: Int)
    /// A value TURNCore decodes is malformed: wrong length, bad family, invalid UTF-8, out-of-range field.
    case invalidAttribute(STUNAttributeType)
    /// Something other than MESSAGE-INTEGRITY-SHA256 or FINGERPRINT follows MESSAGE-INTEGRITY, or something
    /// other than FINGERPRINT follows MESSAGE-INTEGRITY-SHA256.
    case attributeAfterMessageIntegrity(STUNAttributeType)
    /// Anything follows FINGERPRINT.
    case attributeAfterFingerprint(STUNAttributeType)
    /// A fast-path helper needed an attribute the message lacks.
    case missingAttribute(STUNAttributeType)

    public var description: String {
        switch self {
        case .tooShort(let count): "STUN message too short (\(count) bytes)"
        case .notSTUN: "not a STUN message (top bits set)"
        case .badMagicCookie(let value): "bad magic cookie 0x" + String(value, radix: 16)
        case .lengthNotMultipleOfFour(let length): "STUN length \(length) is not a multiple of 4"
        case .lengthMismatch(let header, let actual): "STUN length \(header) but \(actual) bytes of attributes"
        case .messageTooLarge(let size): "STUN message of \(size) bytes is too large"
        case .tooManyAttributes(let count): "more than \(count) STUN attributes"
        case .truncatedAttribute(let offset): "STUN attribute at offset \(offset) runs past the message"
        case .invalidAttribute(let type): "malformed \(type)"
        case .attributeAfterMessageIntegrity(let type): "\(type) after MESSAGE-INTEGRITY"
        case .attributeAfterFingerprint(let type): "\(type) after FINGERPRINT"
        case .missingAttribute(let type): "missing \(type)"
        }
    }
}

/// Bounds for parsing.
public struct STUNParseOptions: Hashable, Sendable {
    /// The largest message accepted, header included. Defaults to what the wire format allows (65552); a server
    /// can lower it (e.g. to 4096 for requests on a TCP connection).
    public var maximumMessageSize: Int
    /// The most attributes accepted in one message.
    public var maximumAttributeCount: Int

    public init(maximumMessageSize: Int = STUNMessage.maximumSize, maximumAttributeCount: Int = 64) {
        self.maximumMessageSize = maximumMessageSize
        self.maximumAttributeCount = maximumAttributeCount
    }
}

/// The 20-byte header of a message whose framing has been checked.
public struct STUNHeader: Hashable, Sendable {
    public var type: STUNMessageType
    /// The length field: the number of attribute bytes after the header.
    public var length: Int
    public var transactionID: STUNTransactionID

    /// Checks what can be checked from the header alone against the datagram or frame `bytes`: at least 20
    /// bytes, top bits clear, the magic cookie, a length that is a multiple of 4, equals `bytes.count - 20`, and
    /// fits `options`. The cheap early drop for a listener.
    public init(parsing bytes: UnsafeRawBufferPointer, options: STUNParseOptions = .init()) throws(STUNParseError) {
        guard bytes.count >= STUNMessage.headerLength else { throw .tooShort(bytes.count) }
        guard let type = STUNMessageType(rawValue: bytes.uint16(at: 0)) else { throw .notSTUN }
        let cookie = bytes.uint32(at: 4)
        guard cookie == STUNMessage.magicCookie else { throw .badMagicCookie(cookie) }
        let length = Int(bytes.uint16(at: 2))
        guard length & 3 == 0 else { throw .lengthNotMultipleOfFour(length) }
        guard bytes.count <= options.maximumMessageSize else { throw .messageTooLarge(bytes.count) }
        guard length == bytes.count - STUNMessage.headerLength else {
            throw .lengthMismatch(header: length, actual: bytes.count - STUNMessage.headerLength)
        }
        self.type = type
        self.length = length
        self.transactionID = STUNTransactionID(reading: bytes, at: 8)
    }
}

/// An attribute located but not decoded: its type and where its value lies in the message (padding excluded).
public struct STUNRawAttribute: Hashable, Sendable {
    public var type: STUNAttributeType
    /// Offsets into the message bytes, header included.
    public var value: Range<Int>
    /// The offset of the attribute's 4-byte header.
    public var offset: Int { value.lowerBound - 4 }
}

extension STUNMessage {
    /// Parses a whole datagram or stream frame strictly (see `STUNParseError` for the rules). Unknown attributes
    /// are kept as `.other`; unknown comprehension-required ones are listed by
    /// `unknownComprehensionRequiredAttributes` for a 420 answer.
    ///
    /// Unlike RFC 8489 §14.5, which says to ignore attributes after MESSAGE-INTEGRITY, this parser refuses them:
    /// no legitimate sender puts them there, and refusing keeps unauthenticated data out of the server.
    public init(parsing bytes: UnsafeRawBufferPointer, options: STUNParseOptions = .init()) throws(STUNParseError) {
        let header = try STUNHeader(parsing: bytes, options: options)
        var attributes: [STUNAttribute] = []
        attributes.reserveCapacity(8)
        try STUNMessage.walkAttributes(bytes, options: options) { (raw) throws(STUNParseError) in
            attributes.append(try STUNMessage.decode(raw, in: bytes, transactionID: header.transactionID))
        }
        self.init(type: header.type, transactionID: header.transactionID, attributes: attributes)
    }

    /// Parses a whole datagram or stream frame; see `init(parsing:options:)` for the rules.
    public init(parsing bytes: some Collection<UInt8>, options: STUNParseOptions = .init()) throws(STUNParseError) {
        self = try withRawBytes(bytes) { (raw) throws(STUNParseError) in
            try STUNMessage(parsing: raw, options: options)
        }
    }

    /// Checks the framing of a message (header and every attribute's bounds and order, as the full parser does)
    /// without decoding any value or allocating, and calls `body` with each attribute in order. For the relay's
    /// hot paths and for deciding early whether a message deserves a full parse.
    @discardableResult
    public static func scan(
        _ bytes: UnsafeRawBufferPointer, options: STUNParseOptions = .init(), _ body: (STUNRawAttribute) -> Void
    ) throws(STUNParseError) -> STUNHeader {
        let header = try STUNHeader(parsing: bytes, options: options)
        try walkAttributes(bytes, options: options) { raw in body(raw) }
        return header
    }

    /// Walks the attributes of a message whose header has been checked, enforcing bounds, the attribute count and
    /// the MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 / FINGERPRINT order.
    static func walkAttributes(
        _ bytes: UnsafeRawBufferPointer, options: STUNParseOptions,
        _ body: (STUNRawAttribute) throws(STUNParseError) -> Void
    ) throws(STUNParseError) {
        var order = IntegrityOrder()
        var offset = STUNMessage.headerLength
        var count = 0
        let end = bytes.count
        while offset < end {
            guard end - offset >= 4 else { throw .truncatedAttribute(offset: offset) }
            let type = STUNAttributeType(rawValue: bytes.uint16(at: offset))
            let length = Int(bytes.uint16(at: offset + 2))
            let valueStart = offset + 4
            guard end - valueStart >= paddedTo4(length) else { throw .truncatedAttribute(offset: offset) }
            count += 1
            guard count <= options.maximumAttributeCount else {
                throw .tooManyAttributes(options.maximumAttributeCount)
            }
            try order.accept(type)
            try body(STUNRawAttribute(type: type, value: valueStart..<(valueStart + length)))
            offset = valueStart + paddedTo4(length)
        }
    }

    /// Decodes one attribute value.
    static func decode(
        _ raw: STUNRawAttribute, in bytes: UnsafeRawBufferPointer, transactionID: STUNTransactionID
    ) throws(STUNParseError) -> STUNAttribute {
        let value = UnsafeRawBufferPointer(rebasing: bytes[raw.value])
        let type = raw.type
        let count = value.count
        func address(xor: Bool) throws(STUNParseError) -> STUNAddress {
            guard let address = STUNAddress(decoding: value, xor: xor ? transactionID : nil) else {
                throw .invalidAttribute(type)
            }
            return address
        }
        func text(maximum: Int) throws(STUNParseError) -> String {
            guard count <= maximum, let string = String(validating: value, as: UTF8.self) else {
                throw .invalidAttribute(type)
            }
            return string
        }
        func exactly(_ expected: Int) throws(STUNParseError) {
            guard count == expected else { throw .invalidAttribute(type) }
        }
        func errorCode(from start: Int) throws(STUNParseError) -> STUNErrorCode {
            let errorClass = Int(value[start + 2] & 0x07)
            let number = Int(value[start + 3])
            let reasonBytes = UnsafeRawBufferPointer(rebasing: value[(start + 4)...])
            guard (3...6).contains(errorClass), number <= 99,
                let reason = String(validating: reasonBytes, as: UTF8.self),
                let code = STUNErrorCode(code: errorClass * 100 + number, reason: reason)
            else { throw .invalidAttribute(type) }
            return code
        }
        func passwordAlgorithm(at start: Int) throws(STUNParseError) -> (STUNPasswordAlgorithm, next: Int) {
            guard count - start >= 4 else { throw .invalidAttribute(type) }
            let number = value.uint16(at: start)
            let parameterLength = Int(value.uint16(at: start + 2))
            guard count - start - 4 >= paddedTo4(parameterLength) else { throw .invalidAttribute(type) }
            let parameters = value.bytes((start + 4)..<(start + 4 + parameterLength))
            return (
                STUNPasswordAlgorithm(number: number, parameters: parameters), start + 4 + paddedTo4(parameterLength)
            )
        }

        switch type {
        case .mappedAddress: return .mappedAddress(try address(xor: false))
        case .xorMappedAddress: return .xorMappedAddress(try address(xor: true))
        case .alternateServer: return .alternateServer(try address(xor: false))
        case .xorPeerAddress: return .xorPeerAddress(try address(xor: true))
        case .xorRelayedAddress: return .xorRelayedAddress(try address(xor: true))
        case .username: return .username(try text(maximum: STUNLimits.maximumUsernameLength))
        case .realm: return .realm(try text(maximum: STUNLimits.maximumTextLength))
        case .nonce: return .nonce(try text(maximum: STUNLimits.maximumTextLength))
        case .software: return .software(try text(maximum: STUNLimits.maximumTextLength))
        case .userhash:
            try exactly(32)
            return .userhash(value.bytes(0..<count))
        case .messageIntegrity:
            try exactly(20)
            return .messageIntegrity(value.bytes(0..<count))
        case .messageIntegritySHA256:
            guard (16...32).contains(count), count & 3 == 0 else { throw .invalidAttribute(type) }
            return .messageIntegritySHA256(value.bytes(0..<count))
        case .fingerprint:
            try exactly(4)
            return .fingerprint(value.uint32(at: 0))
        case .errorCode:
            guard count >= 4 else { throw .invalidAttribute(type) }
            return .errorCode(try errorCode(from: 0))
        case .passwordAlgorithms:
            var list: [STUNPasswordAlgorithm] = []
            var position = 0
            while position < count {
                let (algorithm, next) = try passwordAlgorithm(at: position)
                list.append(algorithm)
                position = next
            }
            return .passwordAlgorithms(list)
        case .passwordAlgorithm:
            let (algorithm, next) = try passwordAlgorithm(at: 0)
            guard next == count else { throw .invalidAttribute(type) }
            return .passwordAlgorithm(algorithm)
        case .unknownAttributes:
            guard count & 1 == 0 else { throw .invalidAttribute(type) }
            return .unknownAttributes(
                stride(from: 0, to: count, by: 2).map { STUNAttributeType(rawValue: value.uint16(at: $0)) })
        case .channelNumber:
            try exactly(4)
            return .channelNumber(value.uint16(at: 0))
        case .lifetime:
            try exactly(4)
            return .lifetime(value.uint32(at: 0))
        case .data:
            return .data(value.bytes(0..<count))
        case .requestedAddressFamily:
            try exactly(4)
            return .requestedAddressFamily(STUNAddressFamily(rawValue: value[0]))
        case .additionalAddressFamily:
            try exactly(4)
            return .additionalAddressFamily(STUNAddressFamily(rawValue: value[0]))
        case .evenPort:
            try exactly(1)
            return .evenPort(reserveNextPort: value[0] & 0x80 != 0)
        case .requestedTransport:
            try exactly(4)
            return .requestedTransport(value[0])
        case .dontFragment:
            try exactly(0)
            return .dontFragment
        case .reservationToken:
            try exactly(8)
            return .reservationToken(value.uint64(at: 0))
        case .addressErrorCode:
            guard count >= 4 else { throw .invalidAttribute(type) }
            return .addressErrorCode(family: STUNAddressFamily(rawValue: value[0]), error: try errorCode(from: 0))
        case .icmp:
            try exactly(8)
            let field = value.uint16(at: 2)
            guard
                let icmp = STUNICMP(
                    type: UInt8(truncatingIfNeeded: field >> 9), code: field & 0x1FF, errorData: value.uint32(at: 4))
            else { throw .invalidAttribute(type) }
            return .icmp(icmp)
        default:
            return .other(type, value.bytes(0..<count))
        }
    }
}

/// Tracks where MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may appear: MI may be followed only
/// by MI-SHA256 or FINGERPRINT, MI-SHA256 only by FINGERPRINT, FINGERPRINT by nothing. Shared by the parser and
/// the encoder, so everything the encoder writes parses.
struct IntegrityOrder {
    enum State { case open, afterMessageIntegrity, afterMessageIntegritySHA256, afterFingerprint }
    var state = State.open

    mutating func accept(_ type: STUNAttributeType) throws(STUNParseError) {
        switch (state, type) {
        case (.afterFingerprint, _):
            throw .attributeAfterFingerprint(type)
        case (_, .fingerprint):
            state = .afterFingerprint
        case (.open, .messageIntegrity):
            state = .afterMessageIntegrity
        case (.open, .messageIntegritySHA256), (.afterMessageIntegrity, .messageIntegritySHA256):
            state = .afterMessageIntegritySHA256
        case (.open, _):
            break
        case (.afterMessageIntegrity, _), (.afterMessageIntegritySHA256, _):
            throw .attributeAfterMessageIntegrity(type)
        }
    }
}
