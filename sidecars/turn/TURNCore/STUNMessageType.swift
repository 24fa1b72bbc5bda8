import ChatmailCrypto

/// A STUN method: the 12-bit M0...M11 of the message type (RFC 8489 §5), with the methods of RFC 8489 and
/// RFC 8656 (TURN) plus RFC 6062 (TURN over TCP) named.
public struct STUNMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The method number, 0x000...0xFFF.
    public let rawValue: UInt16

    /// A method from its number; nil above 0xFFF.
    public init?(rawValue: UInt16) {
        guard rawValue <= 0xFFF else { return nil }
        self.rawValue = rawValue
    }

    init(uncheckedRawValue: UInt16) {
        self.rawValue = uncheckedRawValue
    }

    public static let binding = STUNMethod(uncheckedRawValue: 0x001)
    public static let allocate = STUNMethod(uncheckedRawValue: 0x003)
    public static let refresh = STUNMethod(uncheckedRawValue: 0x004)
    public static let send = STUNMethod(uncheckedRawValue: 0x006)
    public static let data = STUNMethod(uncheckedRawValue: 0x007)
    public static let createPermission = STUNMethod(uncheckedRawValue: 0x008)
    public static let channelBind = STUNMethod(uncheckedRawValue: 0x009)
    public static let connect = STUNMethod(uncheckedRawValue: 0x00A)
    public static let connectionBind = STUNMethod(uncheckedRawValue: 0x00B)
    public static let connectionAttempt = STUNMethod(uncheckedRawValue: 0x00C)

    public var description: String {
        switch self {
        case .binding: "Binding"
        case .allocate: "Allocate"
        case .refresh: "Refresh"
        case .send: "Send"
        case .data: "Data"
        case .createPermission: "CreatePermission"
        case .channelBind: "ChannelBind"
        case .connect: "Connect"
        case .connectionBind: "ConnectionBind"
        case .connectionAttempt: "ConnectionAttempt"
        default: "method 0x" + String(rawValue, radix: 16)
        }
    }
}

/// A STUN message class: the C0 and C1 bits of the message type.
public enum STUNClass: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case request = 0b00
    case indication = 0b01
    case successResponse = 0b10
    case errorResponse = 0b11

    public var description: String {
        switch self {
        case .request: "request"
        case .indication: "indication"
        case .successResponse: "success response"
        case .errorResponse: "error response"
        }
    }
}

/// The 14-bit STUN message type: a method and a class, interleaved on the wire as
/// `M11..M7 C1 M6..M4 C0 M3..M0` (RFC 8489 §5).
public struct STUNMessageType: Hashable, Sendable, CustomStringConvertible {
    public var method: STUNMethod
    public var messageClass: STUNClass

    public init(method: STUNMethod, class messageClass: STUNClass) {
        self.method = method
        self.messageClass = messageClass
    }

    /// The type from the first two bytes of a message; nil if either of the two top bits is set.
    public init?(rawValue: UInt16) {
        guard rawValue & 0xC000 == 0 else { return nil }
        let method = (rawValue & 0x000F) | ((rawValue & 0x00E0) >> 1) | ((rawValue & 0x3E00) >> 2)
        let classBits = UInt8(truncatingIfNeeded: ((rawValue & 0x0010) >> 4) | ((rawValue & 0x0100) >> 7))
        self.method = STUNMethod(uncheckedRawValue: method)
        self.messageClass = STUNClass(rawValue: classBits)!
    }

    /// The type as the first two bytes of a message carry it.
    public var rawValue: UInt16 {
        let m = method.rawValue
        let c = UInt16(messageClass.rawValue)
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    public static let bindingRequest = STUNMessageType(method: .binding, class: .request)
    public static let bindingSuccess = STUNMessageType(method: .binding, class: .successResponse)
    public static let allocateRequest = STUNMessageType(method: .allocate, class: .request)
    public static let sendIndication = STUNMessageType(method: .send, class: .indication)
    public static let dataIndication = STUNMessageType(method: .data, class: .indication)

    public var description: String { "\(method) \(messageClass)" }
}

/// The 96-bit transaction ID of a STUN message.
public struct STUNTransactionID: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0...3 of the ID, big-endian.
    public var high: UInt32
    /// Bytes 4...11 of the ID, big-endian.
    public var low: UInt64

    public init(high: UInt32, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The ID from its 12 bytes; nil for any other count.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        self = withRawBytes(bytes) { STUNTransactionID(reading: $0, at: 0) }
    }

    init(reading bytes: UnsafeRawBufferPointer, at offset: Int) {
        self.high = bytes.uint32(at: offset)
        self.low = bytes.uint64(at: offset + 4)
    }

    /// A fresh ID from the system CSPRNG (RFC 8489 §6: "uniformly and randomly chosen").
    public static func random() -> STUNTransactionID {
        var words: (UInt32, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words.0) { Crypto.randomBytes(into: $0) }
        withUnsafeMutableBytes(of: &words.1) { Crypto.randomBytes(into: $0) }
        return STUNTransactionID(high: words.0, low: words.1)
    }

    /// The 12 bytes as they appear on the wire.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12)
        out.appendUInt32(high)
        out.appendUInt64(low)
        return out
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
