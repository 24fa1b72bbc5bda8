/// The salts seen recently, to refuse a replayed request: exact (no false positives) and bounded.
///
/// Two generations of at most `capacity` salts each: when the current one is full it becomes the previous
/// one and the oldest generation is forgotten, so between `capacity` and `2 × capacity` of the latest salts
/// are remembered. The server adds only salts of requests that authenticated, and its own response salts
/// (SIP004), so a reflected response cannot be fed back as a request. For SIP022 the ±30 s timestamp check
/// covers what is older; the generations then cover the 60 s the spec asks for as long as fewer than
/// `capacity` requests arrive per minute.
public struct SaltHistory: Sendable {
    /// A salt of up to 32 bytes, stored inline.
    struct Key: Hashable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count: Int

        init(_ salt: some Collection<UInt8>) {
            count = salt.count
            withUnsafeMutableBytes(of: &words) { raw in
                let copied: Void? = salt.withContiguousStorageIfAvailable { bytes in
                    raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes).prefix(32)))
                }
                if copied == nil {
                    for (index, byte) in salt.prefix(32).enumerated() { raw[index] = byte }
                }
            }
        }

        var bytes: [UInt8] {
            withUnsafeBytes(of: words) { Array($0.prefix(count)) }
        }

        static func == (a: Key, b: Key) -> Bool {
            a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
                && a.words.3 == b.words.3
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }

    public let capacity: Int
    private var current: Set<Key> = []
    private var previous: Set<Key> = []

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// The number of salts remembered.
    public var count: Int { current.count + previous.count }

    /// The remembered salts, the older generation first: inserting them in this order into an empty history
    /// of the same capacity restores this one (for saving it across restarts).
    public var salts: [[UInt8]] {
        (previous.map(\.bytes)) + current.map(\.bytes)
    }

    /// Whether `salt` is remembered.
    public func contains(_ salt: some Collection<UInt8>) -> Bool {
        let key = Key(salt)
        return current.contains(key) || previous.contains(key)
    }

    /// Remembers `salt`; false if it was remembered already (a replay).
    @discardableResult
    public mutating func insert(_ salt: some Collection<UInt8>) -> Bool {
        let key = Key(salt)
        guard !current.contains(key), !previous.contains(key) else { return false }
        if current.count >= capacity {
            previous = current
            current = []
            current.reserveCapacity(min(capacity, 1 << 16))
        }
        current.insert(key)
        return true
    }
}
