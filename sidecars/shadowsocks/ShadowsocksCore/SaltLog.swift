/// The salt history as saved across restarts: a 16-byte header, then the salts back to back, older first.
///
/// Header: the magic `chmsalt1`, a flags byte (bit 0: the server stopped cleanly, so the file holds every salt
/// it accepted), the salt length, six zero bytes. The server rewrites the file whole (atomically) at start with
/// the flag clear, appends new salts while it runs, and rewrites it with the flag set when it stops. A partial
/// last record (a crash during an append) is ignored.
public enum SaltLog {
    public static let magic = Array("chmsalt1".utf8)
    public static let headerLength = 16

    /// What a saved file holds.
    public struct Contents: Equatable, Sendable {
        /// The writer stopped cleanly: nothing it accepted is missing.
        public var cleanStop: Bool
        public var salts: [[UInt8]]

        public init(cleanStop: Bool, salts: [[UInt8]]) {
            self.cleanStop = cleanStop
            self.salts = salts
        }
    }

    public static func header(saltLength: Int, cleanStop: Bool) -> [UInt8] {
        magic + [cleanStop ? 1 : 0, UInt8(saltLength)] + [UInt8](repeating: 0, count: 6)
    }

    /// A whole file: header and `salts` (each `saltLength` bytes).
    public static func encode(_ salts: [[UInt8]], saltLength: Int, cleanStop: Bool) -> [UInt8] {
        var bytes = header(saltLength: saltLength, cleanStop: cleanStop)
        bytes.reserveCapacity(headerLength + salts.count * saltLength)
        for salt in salts where salt.count == saltLength { bytes += salt }
        return bytes
    }

    /// New salts to append to a file.
    public static func records(_ salts: [[UInt8]], saltLength: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(salts.count * saltLength)
        for salt in salts where salt.count == saltLength { bytes += salt }
        return bytes
    }

    /// The contents of `bytes`; nil when they are not a salt log for salts of `saltLength` bytes.
    public static func decode(_ bytes: [UInt8], saltLength: Int) -> Contents? {
        guard bytes.count >= headerLength, Array(bytes[0..<8]) == magic, Int(bytes[9]) == saltLength, saltLength > 0
        else { return nil }
        let records = (bytes.count - headerLength) / saltLength
        let salts = (0..<records).map { index in
            Array(bytes[headerLength + index * saltLength..<headerLength + (index + 1) * saltLength])
        }
        return Contents(cleanStop: bytes[8] & 1 == 1, salts: salts)
    }
}
