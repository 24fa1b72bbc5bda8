import ChatmailCrypto

extension STUNMessage {
    /// Whether `datagram` carries a MESSAGE-INTEGRITY that is a valid HMAC-SHA1 under `key` (RFC 8489 §14.5): over
    /// the bytes before the attribute, with the header's length field set to end at the attribute. False if the
    /// framing is invalid or the attribute is missing. The comparison is constant-time.
    public static func verifyMessageIntegrity(_ datagram: UnsafeRawBufferPointer, key: some Collection<UInt8>) -> Bool {
        guard let located = locate(.messageIntegrity, in: datagram) else { return false }
        let mac = withAuthenticatedPrefix(datagram, upTo: located) { Crypto.hmacSHA1(key: key, message: $0) }
        return Crypto.constantTimeEquals(mac, UnsafeRawBufferPointer(rebasing: datagram[located.value]))
    }

    /// Whether `datagram` carries a MESSAGE-INTEGRITY-SHA256 that is a valid HMAC-SHA256 under `key`, truncated to
    /// the attribute's length (16...32 bytes; RFC 8489 §14.6). False if the framing is invalid or the attribute is
    /// missing. The comparison is constant-time.
    public static func verifyMessageIntegritySHA256(
        _ datagram: UnsafeRawBufferPointer, key: some Collection<UInt8>
    ) -> Bool {
        guard let located = locate(.messageIntegritySHA256, in: datagram) else { return false }
        let mac = withAuthenticatedPrefix(datagram, upTo: located) { Crypto.hmacSHA256(key: key, message: $0) }
        return Crypto.constantTimeEquals(
            mac.prefix(located.value.count), UnsafeRawBufferPointer(rebasing: datagram[located.value]))
    }

    /// Whether `datagram` ends with a FINGERPRINT that matches its CRC-32 (RFC 8489 §14.7). False if the framing
    /// is invalid or the attribute is missing.
    public static func verifyFingerprint(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard let located = locate(.fingerprint, in: datagram), located.value.count == 4 else { return false }
        // FINGERPRINT is always last, so the header's length already ends at it: no patching needed.
        let crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: datagram[..<located.offset]))
        return crc ^ fingerprintXOR == datagram.uint32(at: located.value.lowerBound)
    }

    /// `verifyMessageIntegrity` on an array or other collection.
    public static func verifyMessageIntegrity(_ datagram: some Collection<UInt8>, key: some Collection<UInt8>) -> Bool {
        withRawBytes(datagram) { verifyMessageIntegrity($0, key: key) }
    }

    /// `verifyMessageIntegritySHA256` on an array or other collection.
    public static func verifyMessageIntegritySHA256(
        _ datagram: some Collection<UInt8>, key: some Collection<UInt8>
    ) -> Bool {
        withRawBytes(datagram) { verifyMessageIntegritySHA256($0, key: key) }
    }

    /// `verifyFingerprint` on an array or other collection.
    public static func verifyFingerprint(_ datagram: some Collection<UInt8>) -> Bool {
        withRawBytes(datagram) { verifyFingerprint($0) }
    }

    /// The first attribute of `type` in a message with valid framing, or nil.
    private static func locate(_ type: STUNAttributeType, in datagram: UnsafeRawBufferPointer) -> STUNRawAttribute? {
        var found: STUNRawAttribute?
        do {
            try scan(datagram) { raw in
                if found == nil, raw.type == type { found = raw }
            }
        } catch {
            return nil
        }
        guard let found, type != .messageIntegrity || found.value.count == 20,
            type != .messageIntegritySHA256 || ((16...32).contains(found.value.count) && found.value.count & 3 == 0)
        else { return nil }
        return found
    }

    /// Runs `body` on the bytes an integrity attribute covers: everything before it, with the length field
    /// counting up to the end of that attribute. Copies only when something follows the attribute, since only then
    /// the length field must change.
    private static func withAuthenticatedPrefix<R>(
        _ datagram: UnsafeRawBufferPointer, upTo attribute: STUNRawAttribute, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        let prefix = UnsafeRawBufferPointer(rebasing: datagram[..<attribute.offset])
        let length = attribute.value.upperBound - headerLength
        if Int(datagram.uint16(at: 2)) == length { return body(prefix) }
        var copy = Array(prefix)
        copy.setUInt16(UInt16(length), at: 2)
        return copy.withUnsafeBytes(body)
    }
}
