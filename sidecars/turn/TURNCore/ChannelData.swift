/// A ChannelData message (RFC 8656 §12.4): a 2-byte channel number (0x4000...0x7FFE), a 2-byte length and the
/// application data. Over UDP the length may be shorter than the datagram (padding is allowed and ignored);
/// over TCP and TLS every message is padded to a multiple of 4.
public struct ChannelData: Hashable, Sendable {
    /// The numbers a client may bind. RFC 8656 §12 narrowed them to 0x4000...0x4FFF, but RFC 5766 allowed up to
    /// 0x7FFE and deployed clients (coturn's own) still pick from the whole old range.
    public static let validNumbers: ClosedRange<UInt16> = 0x4000...0x7FFE
    public static let headerLength = 4

    public var channel: UInt16
    /// Where the application data lies in the parsed bytes.
    public var payload: Range<Int>

    /// Parses a datagram: nil unless the first two bits are 01, the number is bindable and the length fits.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 4 else { return nil }
        let channel = bytes.uint16(at: 0)
        let length = Int(bytes.uint16(at: 2))
        guard ChannelData.validNumbers.contains(channel), length <= bytes.count - 4 else { return nil }
        self.channel = channel
        self.payload = 4..<(4 + length)
    }

    /// `init(parsing:)` on an array or other collection.
    public init?(parsing bytes: some Collection<UInt8>) {
        guard let parsed = withRawBytes(bytes, { ChannelData(parsing: $0) }) else { return nil }
        self = parsed
    }

    /// The 4-byte header for `length` bytes of data on `channel`.
    public static func header(channel: UInt16, length: Int) -> UInt32 {
        UInt32(channel) << 16 | UInt32(length)
    }
}

/// Framing of the byte stream of a TURN client over TCP or TLS (RFC 8656 §11.5): STUN messages and ChannelData
/// messages follow each other; the first bits tell which.
public enum TURNStreamFraming {
    /// The largest frame accepted on a stream.
    public static let maximumFrameLength = STUNMessage.maximumSize

    /// The length of the frame that starts with `first4` (its first four bytes), or nil if the stream is not
    /// TURN (top bits 10 or 11, or a reserved channel number): the caller closes the connection.
    public static func frameLength(first4 word: UInt32) -> Int? {
        let type = UInt16(truncatingIfNeeded: word >> 16)
        let length = Int(word & 0xFFFF)
        switch type >> 14 {
        case 0:
            guard length & 3 == 0 else { return nil }
            return STUNMessage.headerLength + length
        case 1:
            guard ChannelData.validNumbers.contains(type) else { return nil }
            return ChannelData.headerLength + paddedTo4(length)
        default:
            return nil
        }
    }
}
