/// BLAKE3 in pure Swift, written from the BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn,
/// "BLAKE3: one function, fast everywhere", 2020). OpenSSL 3.0 has no BLAKE3, and the iroh relay handshake
/// (`derive_key`) and Shadowsocks 2022 session subkeys (`derive_key("shadowsocks 2022 session subkey", PSK ‖ salt)`)
/// need it.
///
/// An incremental hasher and a value type: copying it forks the hash state. It covers all three modes (hash,
/// keyed hash, derive key) and the extendable output. It is portable scalar code (no SIMD, one thread), so it
/// is several times slower than the upstream implementation on large inputs, but it does not allocate per
/// block: the only heap storage is the chaining-value stack, which holds at most log2(chunks) + 1 entries.
///
/// ```swift
/// let digest = BLAKE3.hash(bytes)  // 32 bytes
/// let subkey = BLAKE3.deriveKey(context: "shadowsocks 2022 session subkey", material: psk + salt)
/// ```
public struct BLAKE3: Sendable {
    /// The key words of this hasher: the IV (hash), the key (keyed hash) or the context key (derive key).
    private let key: ChainingValue
    /// KEYED_HASH, DERIVE_KEY_CONTEXT or DERIVE_KEY_MATERIAL (or none), set on every compression.
    private let modeFlags: UInt32
    /// The chunk that is being filled. Its last block stays buffered until more input shows it is not the last.
    private var chunk: ChunkState
    /// Chaining values of completed subtrees, largest first: one per set bit of the number of completed chunks.
    private var stack: [ChainingValue] = []

    /// A hasher in the default hash mode.
    public init() {
        self.init(key: .iv, flags: 0)
    }

    /// A hasher in keyed-hash mode (a MAC / PRF). The key must be exactly 32 bytes.
    ///
    /// - Throws: `CryptoError.invalidKeyLength` if `key` is not 32 bytes long.
    public init(key: [UInt8]) throws(CryptoError) {
        guard key.count == Self.keyLength else {
            throw .invalidKeyLength(expected: Self.keyLength, actual: key.count)
        }
        let words = key.withUnsafeBytes { ChainingValue(loading: $0.baseAddress!) }
        self.init(key: words, flags: Flags.keyedHash)
    }

    /// A hasher in derive-key mode: feed it the key material with `update`.
    ///
    /// The context string should be a hard-coded, globally unique, application-specific constant (for example
    /// `"shadowsocks 2022 session subkey"`), never variable or secret data.
    public init(deriveKeyContext context: String) {
        var contextHasher = BLAKE3(key: .iv, flags: Flags.deriveKeyContext)
        contextHasher.update(context.utf8)
        let contextKey = contextHasher.rootOutput().rootChainingValue()
        self.init(key: contextKey, flags: Flags.deriveKeyMaterial)
    }

    private init(key: ChainingValue, flags: UInt32) {
        self.key = key
        self.modeFlags = flags
        self.chunk = ChunkState(key: key, counter: 0)
    }

    /// Adds `bytes` to the input. Feeding the input in any number of pieces gives the same result as one call.
    public mutating func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done != nil { return }
        // Not contiguous: copy through a stack buffer, one block at a time.
        var iterator = bytes.makeIterator()
        var scratch = BlockBuffer()
        while true {
            var filled = 0
            withUnsafeMutableBytes(of: &scratch.bytes) { raw in
                while filled < raw.count, let byte = iterator.next() {
                    raw[filled] = byte
                    filled += 1
                }
            }
            if filled == 0 { break }
            withUnsafeBytes(of: scratch.bytes) { update(UnsafeRawBufferPointer(rebasing: $0[..<filled])) }
            if filled < BlockBuffer.size { break }
        }
    }

    /// Adds the bytes in `bytes` to the input. Feeding the input in any number of pieces gives the same result as
    /// one call.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var input = bytes.baseAddress else { return }
        var remaining = bytes.count
        let blockSize = BlockBuffer.size
        while remaining > 0 {
            if chunk.blockLength == blockSize {
                // More input follows, so the buffered block is not the last block of the input.
                let isLastInChunk = chunk.blocksCompressed == Self.blocksPerChunk - 1
                withUnsafeBytes(of: chunk.block.bytes) { compressChunkBlock($0.baseAddress!, endsChunk: isLastInChunk) }
                chunk.blockLength = 0
            }
            if chunk.blockLength == 0 {
                // Whole blocks straight from the input, always keeping at least one byte back for the buffer.
                while remaining > blockSize {
                    compressChunkBlock(input, endsChunk: chunk.blocksCompressed == Self.blocksPerChunk - 1)
                    input += blockSize
                    remaining -= blockSize
                }
            }
            let take = min(blockSize - chunk.blockLength, remaining)
            let offset = chunk.blockLength
            withUnsafeMutableBytes(of: &chunk.block.bytes) { raw in
                (raw.baseAddress! + offset).copyMemory(from: input, byteCount: take)
            }
            chunk.blockLength += take
            input += take
            remaining -= take
        }
    }

    /// The first `length` bytes of the extendable output (32 by default, the standard digest length).
    ///
    /// Does not change the hasher: more input can still be added, and a shorter output is a prefix of a longer one.
    /// - Precondition: `length >= 0`.
    public func finalize(length: Int = 32) -> [UInt8] {
        precondition(length >= 0, "BLAKE3.finalize: negative output length")
        let root = rootOutput()
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            var blockCounter: UInt64 = 0
            var offset = 0
            var block = BlockBuffer()
            while offset < length {
                let words = root.rootBlock(outputCounter: blockCounter)
                withUnsafeMutableBytes(of: &block.bytes) { raw in
                    words.store(to: raw.baseAddress!)
                    let count = min(BlockBuffer.size, length - offset)
                    UnsafeMutableRawPointer(buffer.baseAddress! + offset).copyMemory(
                        from: raw.baseAddress!, byteCount: count)
                }
                blockCounter += 1
                offset += BlockBuffer.size
            }
            initialized = length
        }
    }

    /// BLAKE3 hash of `bytes`, `length` bytes of output (32 by default).
    public static func hash(_ bytes: some Collection<UInt8>, length: Int = 32) -> [UInt8] {
        var hasher = BLAKE3()
        hasher.update(bytes)
        return hasher.finalize(length: length)
    }

    /// BLAKE3 keyed hash (MAC) of `bytes` under a 32-byte `key`, `length` bytes of output (32 by default).
    ///
    /// - Throws: `CryptoError.invalidKeyLength` if `key` is not 32 bytes long.
    public static func keyedHash(key: [UInt8], _ bytes: some Collection<UInt8>, length: Int = 32)
        throws(CryptoError) -> [UInt8]
    {
        var hasher = try BLAKE3(key: key)
        hasher.update(bytes)
        return hasher.finalize(length: length)
    }

    /// BLAKE3 `derive_key`: a `length`-byte key (32 by default) derived from `material` for the purpose named by
    /// `context`, a hard-coded application-specific string.
    public static func deriveKey(context: String, material: some Collection<UInt8>, length: Int = 32) -> [UInt8] {
        var hasher = BLAKE3(deriveKeyContext: context)
        hasher.update(material)
        return hasher.finalize(length: length)
    }

    // MARK: - The tree

    static let keyLength = 32
    static let blocksPerChunk = 16

    /// Compresses one full 64-byte block of the current chunk (never the last block of the input). If it is the
    /// chunk's 16th block, the chunk is complete: its chaining value goes onto the stack and a new chunk starts.
    @inline(__always)
    private mutating func compressChunkBlock(_ block: UnsafeRawPointer, endsChunk: Bool) {
        var flags = modeFlags
        if chunk.blocksCompressed == 0 { flags |= Flags.chunkStart }
        if endsChunk { flags |= Flags.chunkEnd }
        chunk.chainingValue = Self.compress(
            chunk.chainingValue, Words16(loading: block), counter: chunk.counter, length: 64, flags: flags)
        if endsChunk {
            pushChunk(chunk.chainingValue)
        } else {
            chunk.blocksCompressed += 1
        }
    }

    /// Adds the chaining value of the completed chunk number `chunk.counter` to the tree, merging every subtree
    /// that is now complete (one merge per trailing zero bit of the new chunk count), and starts the next chunk.
    /// Only called when more input follows, so none of the merged parents can be the root.
    private mutating func pushChunk(_ chunkValue: ChainingValue) {
        var value = chunkValue
        var completedChunks = chunk.counter + 1
        while completedChunks & 1 == 0 {
            value = Output.parent(left: stack.removeLast(), right: value, key: key, flags: modeFlags).chainingValue()
            completedChunks >>= 1
        }
        stack.append(value)
        chunk = ChunkState(key: key, counter: chunk.counter + 1)
    }

    /// The root node: the current chunk's last block, folded up through the stack from the right as parents.
    private func rootOutput() -> Output {
        var output = chunk.output(flags: modeFlags)
        for left in stack.reversed() {
            output = Output.parent(left: left, right: output.chainingValue(), key: key, flags: modeFlags)
        }
        return output
    }

    // MARK: - The compression function

    /// The BLAKE3 compression function: the 16-word state after 7 rounds, before the output feed-forward.
    @inline(__always)
    fileprivate static func compressState(
        _ cv: ChainingValue, _ block: Words16, counter: UInt64, length: UInt32, flags: UInt32
    ) -> Words16 {
        var state = Words16(
            cv.w0, cv.w1, cv.w2, cv.w3, cv.w4, cv.w5, cv.w6, cv.w7,
            0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A,
            UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), length, flags)
        var message = block
        for _ in 0..<6 {  // seven rounds, the message permuted between them
            round(&state, message)
            message.permute()
        }
        round(&state, message)
        return state
    }

    /// The compression function truncated to a chaining value (the first 8 output words).
    fileprivate static func compress(
        _ cv: ChainingValue, _ block: Words16, counter: UInt64, length: UInt32, flags: UInt32
    ) -> ChainingValue {
        let s = compressState(cv, block, counter: counter, length: length, flags: flags)
        return ChainingValue(
            s.w0 ^ s.w8, s.w1 ^ s.w9, s.w2 ^ s.w10, s.w3 ^ s.w11,
            s.w4 ^ s.w12, s.w5 ^ s.w13, s.w6 ^ s.w14, s.w7 ^ s.w15)
    }

    /// The full 16-word output of the compression function (for the extendable output of the root).
    fileprivate static func compressExtended(
        _ cv: ChainingValue, _ block: Words16, counter: UInt64, length: UInt32, flags: UInt32
    ) -> Words16 {
        let s = compressState(cv, block, counter: counter, length: length, flags: flags)
        return Words16(
            s.w0 ^ s.w8, s.w1 ^ s.w9, s.w2 ^ s.w10, s.w3 ^ s.w11,
            s.w4 ^ s.w12, s.w5 ^ s.w13, s.w6 ^ s.w14, s.w7 ^ s.w15,
            s.w8 ^ cv.w0, s.w9 ^ cv.w1, s.w10 ^ cv.w2, s.w11 ^ cv.w3,
            s.w12 ^ cv.w4, s.w13 ^ cv.w5, s.w14 ^ cv.w6, s.w15 ^ cv.w7)
    }

    /// One round: G on the four columns, then on the four diagonals, with message words taken in order.
    @inline(__always)
    private static func round(_ s: inout Words16, _ m: Words16) {
        g(&s.w0, &s.w4, &s.w8, &s.w12, m.w0, m.w1)
        g(&s.w1, &s.w5, &s.w9, &s.w13, m.w2, m.w3)
        g(&s.w2, &s.w6, &s.w10, &s.w14, m.w4, m.w5)
        g(&s.w3, &s.w7, &s.w11, &s.w15, m.w6, m.w7)
        g(&s.w0, &s.w5, &s.w10, &s.w15, m.w8, m.w9)
        g(&s.w1, &s.w6, &s.w11, &s.w12, m.w10, m.w11)
        g(&s.w2, &s.w7, &s.w8, &s.w13, m.w12, m.w13)
        g(&s.w3, &s.w4, &s.w9, &s.w14, m.w14, m.w15)
    }

    /// The quarter-round G, as in ChaCha but with two message words added and rotations 16, 12, 8, 7.
    @inline(__always)
    private static func g(
        _ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32, _ x: UInt32, _ y: UInt32
    ) {
        a = a &+ b &+ x
        d = rotateRight(d ^ a, 16)
        c = c &+ d
        b = rotateRight(b ^ c, 12)
        a = a &+ b &+ y
        d = rotateRight(d ^ a, 8)
        c = c &+ d
        b = rotateRight(b ^ c, 7)
    }

    @inline(__always)
    private static func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 {
        (value &>> count) | (value &<< (32 &- count))
    }
}

// MARK: - Building blocks

/// Domain-separation flags (the last word of the compression state).
private enum Flags {
    static let chunkStart: UInt32 = 1 << 0
    static let chunkEnd: UInt32 = 1 << 1
    static let parent: UInt32 = 1 << 2
    static let root: UInt32 = 1 << 3
    static let keyedHash: UInt32 = 1 << 4
    static let deriveKeyContext: UInt32 = 1 << 5
    static let deriveKeyMaterial: UInt32 = 1 << 6
}

/// Eight 32-bit words: a chaining value or a key.
private struct ChainingValue: Sendable {
    var w0, w1, w2, w3, w4, w5, w6, w7: UInt32

    init(
        _ w0: UInt32, _ w1: UInt32, _ w2: UInt32, _ w3: UInt32, _ w4: UInt32, _ w5: UInt32, _ w6: UInt32,
        _ w7: UInt32
    ) {
        (self.w0, self.w1, self.w2, self.w3, self.w4, self.w5, self.w6, self.w7) = (w0, w1, w2, w3, w4, w5, w6, w7)
    }

    /// Eight little-endian words from 32 bytes at `pointer` (any alignment).
    init(loading pointer: UnsafeRawPointer) {
        self.init(
            pointer.littleEndianWord(0), pointer.littleEndianWord(1), pointer.littleEndianWord(2),
            pointer.littleEndianWord(3), pointer.littleEndianWord(4), pointer.littleEndianWord(5),
            pointer.littleEndianWord(6), pointer.littleEndianWord(7))
    }

    /// The IV, shared with SHA-256: the key words of the hash mode and of the context hash of derive-key mode.
    static var iv: ChainingValue {
        ChainingValue(
            0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19)
    }
}

/// Sixteen 32-bit words: a message block, or the compression state.
private struct Words16: Sendable {
    var w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15: UInt32

    @inline(__always)
    init(
        _ w0: UInt32, _ w1: UInt32, _ w2: UInt32, _ w3: UInt32, _ w4: UInt32, _ w5: UInt32, _ w6: UInt32,
        _ w7: UInt32, _ w8: UInt32, _ w9: UInt32, _ w10: UInt32, _ w11: UInt32, _ w12: UInt32, _ w13: UInt32,
        _ w14: UInt32, _ w15: UInt32
    ) {
        (self.w0, self.w1, self.w2, self.w3, self.w4, self.w5, self.w6, self.w7) = (w0, w1, w2, w3, w4, w5, w6, w7)
        (self.w8, self.w9, self.w10, self.w11) = (w8, w9, w10, w11)
        (self.w12, self.w13, self.w14, self.w15) = (w12, w13, w14, w15)
    }

    /// A message block: sixteen little-endian words from 64 bytes at `pointer` (any alignment).
    @inline(__always)
    init(loading p: UnsafeRawPointer) {
        self.init(
            p.littleEndianWord(0), p.littleEndianWord(1), p.littleEndianWord(2), p.littleEndianWord(3),
            p.littleEndianWord(4), p.littleEndianWord(5), p.littleEndianWord(6), p.littleEndianWord(7),
            p.littleEndianWord(8), p.littleEndianWord(9), p.littleEndianWord(10), p.littleEndianWord(11),
            p.littleEndianWord(12), p.littleEndianWord(13), p.littleEndianWord(14), p.littleEndianWord(15))
    }

    /// A parent node's block: the left child's chaining value, then the right child's.
    init(_ left: ChainingValue, _ right: ChainingValue) {
        self.init(
            left.w0, left.w1, left.w2, left.w3, left.w4, left.w5, left.w6, left.w7,
            right.w0, right.w1, right.w2, right.w3, right.w4, right.w5, right.w6, right.w7)
    }

    /// The message permutation applied between rounds: word i of the new block is word σ(i) of the old one,
    /// σ = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8).
    @inline(__always)
    mutating func permute() {
        self = Words16(w2, w6, w3, w10, w7, w0, w4, w13, w1, w11, w12, w5, w9, w14, w15, w8)
    }

    /// Writes the sixteen words little-endian to 64 bytes at `pointer`.
    func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeLittleEndianWords(0, w0, w1, w2, w3)
        pointer.storeLittleEndianWords(4, w4, w5, w6, w7)
        pointer.storeLittleEndianWords(8, w8, w9, w10, w11)
        pointer.storeLittleEndianWords(12, w12, w13, w14, w15)
    }
}

/// 64 bytes of inline storage: the block buffer of a chunk.
private struct BlockBuffer: Sendable {
    static let size = 64
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}

/// The state of the chunk (up to 1024 bytes, 16 blocks) that is being hashed.
private struct ChunkState: Sendable {
    var chainingValue: ChainingValue
    /// The chunk's index in the input, the counter of all its compressions.
    let counter: UInt64
    /// The last block seen, 0...64 bytes of it valid. It is compressed only once more input arrives.
    var block = BlockBuffer()
    var blockLength = 0
    var blocksCompressed = 0

    init(key: ChainingValue, counter: UInt64) {
        self.chainingValue = key
        self.counter = counter
    }

    /// The node of the buffered last block, zero-padded, with CHUNK_END (and CHUNK_START if it is also the first).
    func output(flags modeFlags: UInt32) -> Output {
        var padded = block
        let length = blockLength
        withUnsafeMutableBytes(of: &padded.bytes) { raw in
            let tail = UnsafeMutableRawBufferPointer(rebasing: raw[length...])
            tail.initializeMemory(as: UInt8.self, repeating: 0)
        }
        var flags = modeFlags | Flags.chunkEnd
        if blocksCompressed == 0 { flags |= Flags.chunkStart }
        let words = withUnsafeBytes(of: padded.bytes) { Words16(loading: $0.baseAddress!) }
        return Output(
            inputChainingValue: chainingValue, block: words, counter: counter, length: UInt32(length), flags: flags)
    }
}

/// The inputs of one compression whose flags are not final yet: it gives a chaining value, or with ROOT set,
/// any number of 64-byte output blocks.
private struct Output: Sendable {
    var inputChainingValue: ChainingValue
    var block: Words16
    var counter: UInt64
    var length: UInt32
    var flags: UInt32

    static func parent(left: ChainingValue, right: ChainingValue, key: ChainingValue, flags: UInt32) -> Output {
        Output(
            inputChainingValue: key, block: Words16(left, right), counter: 0, length: 64,
            flags: flags | Flags.parent)
    }

    /// This node as a non-root node.
    func chainingValue() -> ChainingValue {
        BLAKE3.compress(inputChainingValue, block, counter: counter, length: length, flags: flags)
    }

    /// The first 32 bytes of this node's root output, as words.
    func rootChainingValue() -> ChainingValue {
        BLAKE3.compress(inputChainingValue, block, counter: 0, length: length, flags: flags | Flags.root)
    }

    /// Block number `outputCounter` of the root output (bytes 64 × outputCounter ..< 64 × (outputCounter + 1)).
    func rootBlock(outputCounter: UInt64) -> Words16 {
        BLAKE3.compressExtended(
            inputChainingValue, block, counter: outputCounter, length: length, flags: flags | Flags.root)
    }
}

extension UnsafeRawPointer {
    /// The little-endian 32-bit word number `index` (at byte offset 4 × index), at any alignment.
    @inline(__always)
    fileprivate func littleEndianWord(_ index: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
    }
}

extension UnsafeMutableRawPointer {
    /// Stores four words little-endian from word number `index` (byte offset 4 × index) on, at any alignment.
    @inline(__always)
    fileprivate func storeLittleEndianWords(_ index: Int, _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) {
        storeBytes(of: a.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
        storeBytes(of: b.littleEndian, toByteOffset: 4 * index + 4, as: UInt32.self)
        storeBytes(of: c.littleEndian, toByteOffset: 4 * index + 8, as: UInt32.self)
        storeBytes(of: d.littleEndian, toByteOffset: 4 * index + 12, as: UInt32.self)
    }
}
