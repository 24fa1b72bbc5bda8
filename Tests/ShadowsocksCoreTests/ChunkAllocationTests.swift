#if canImport(Glibc)
    import Glibc
    import NIOCore
    import Testing

    @testable import ShadowsocksCore

    /// The hot path (sealing and opening whole streams into buffers reserved by the caller, as the server does
    /// once per read) does not allocate per chunk: not at all. Needs the malloc counter of `Tests/MallocCounter`
    /// preloaded (`make test` runs the AllocationTests a second time with it); skipped without it.
    @Suite("Chunk allocations")
    struct ChunkAllocationTests {
        typealias Counter = @convention(c) () -> UInt

        static func mallocCounter() -> Counter? {
            dlsym(nil, "chatmail_test_malloc_count").map { unsafeBitCast($0, to: Counter.self) }
        }

        @Test(
            "Sealing and opening 1 MiB in chunks allocates nothing (runs only with a preloaded malloc counter)",
            .enabled(if: mallocCounter() != nil, "no malloc counter preloaded"),
            arguments: [ShadowsocksMethod.aes256GCM, .chacha20Poly1305, .blake3AES128GCM])
        func noAllocations(method: ShadowsocksMethod) throws {
            let count = try #require(Self.mallocCounter())
            let key = [UInt8](repeating: 7, count: method.keyLength)
            let salt = [UInt8](repeating: 9, count: method.saltLength)
            var sealer = try ChunkSealer(
                method: method, key: key, salt: salt, requestSalt: method.is2022 ? salt : nil)
            var opener = try ChunkOpener(method: method, subkey: method.sessionSubkey(key: key, salt: salt))
            // Warm up (first calls may set up per-thread state), then measure one 1 MiB round.
            var warm = ByteBuffer(repeating: 1, count: 100)
            var warmWire = ByteBuffer()
            try sealer.seal(&warm, into: &warmWire, now: 1)
            var input = ByteBuffer(repeating: 0x61, count: 1 << 20)
            var wire = ByteBuffer()
            wire.reserveCapacity(sealer.sealedSize(input.readableBytes))
            var plaintext = ByteBuffer()
            plaintext.reserveCapacity(1 << 20)

            let before = count()
            try sealer.seal(&input, into: &wire, now: 1)
            let sealing = count() - before

            // Open what follows the warm-up output's header (the 2022 header was in the warm-up).
            var warmOpened = ByteBuffer()
            warmWire.moveReaderIndex(forwardBy: method.saltLength)
            if method.is2022 {
                #expect(try opener.openBlock(11 + method.saltLength, from: &warmWire, into: &warmOpened))
                #expect(try opener.openBlock(100, from: &warmWire, into: &warmOpened))
            } else {
                try opener.open(from: &warmWire, into: &warmOpened)
            }
            let beforeOpening = count()
            try opener.open(from: &wire, into: &plaintext)
            let opening = count() - beforeOpening

            #expect(sealing == 0)
            #expect(opening == 0)
            #expect(plaintext.readableBytes == 1 << 20)
            #expect(plaintext.readableBytesView.allSatisfy { $0 == 0x61 })
        }
    }
#endif
