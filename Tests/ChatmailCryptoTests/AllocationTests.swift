#if canImport(Glibc)
    import ChatmailCrypto
    import Glibc
    import Testing

    /// Checks that `AEAD.seal` / `AEAD.open` on caller buffers do not allocate.
    ///
    /// It needs the malloc counter of `Tests/MallocCounter` preloaded into the test process, and is
    /// skipped without it; `make test` builds it and runs these tests a second time with it preloaded.
    @Suite("AEAD allocations")
    struct AllocationTests {
        typealias Counter = @convention(c) () -> UInt

        static func mallocCounter() -> Counter? {
            dlsym(nil, "chatmail_test_malloc_count").map { unsafeBitCast($0, to: Counter.self) }
        }

        @Test(
            "AEAD seal and open in place do not allocate (runs only with a preloaded malloc counter)",
            .enabled(if: mallocCounter() != nil, "no malloc counter preloaded"),
            arguments: AEAD.Algorithm.allCases)
        func sealAndOpenDoNotAllocate(algorithm: AEAD.Algorithm) throws {
            let count = try #require(Self.mallocCounter())
            let aead = try AEAD(algorithm, key: [UInt8](repeating: 0x42, count: algorithm.keyLength))
            var nonce = [UInt8](repeating: 0, count: 12)
            let aad: [UInt8] = [1, 2, 3, 4]
            var payload = [UInt8](repeating: 0x61, count: 16383)
            var tag = [UInt8](repeating: 0, count: 16)
            var allocations: UInt = 0
            var opened = 0
            try nonce.withUnsafeMutableBytes { nonce in
                try aad.withUnsafeBytes { aad in
                    try payload.withUnsafeMutableBytes { payload in
                        try tag.withUnsafeMutableBytes { tag in
                            // Warm up: first calls may set up per-thread state in libcrypto or the Swift runtime.
                            try aead.seal(nonce: UnsafeRawBufferPointer(nonce), aad: aad, inPlace: payload, tag: tag)
                            try aead.open(
                                nonce: UnsafeRawBufferPointer(nonce), aad: aad, inPlace: payload,
                                tag: UnsafeRawBufferPointer(tag))
                            let before = count()
                            for round in 0..<200 {
                                nonce[0] = UInt8(truncatingIfNeeded: round)
                                try aead.seal(
                                    nonce: UnsafeRawBufferPointer(nonce), aad: aad, inPlace: payload, tag: tag)
                                try aead.open(
                                    nonce: UnsafeRawBufferPointer(nonce), aad: aad, inPlace: payload,
                                    tag: UnsafeRawBufferPointer(tag))
                                opened += 1
                            }
                            allocations = count() - before
                        }
                    }
                }
            }
            #expect(opened == 200)
            #expect(allocations == 0)
            #expect(payload.allSatisfy { $0 == 0x61 })
        }

        @Test(
            "The malloc counter sees allocations (guards against a counter that never counts)",
            .enabled(if: mallocCounter() != nil, "no malloc counter preloaded"))
        func counterCounts() throws {
            let count = try #require(Self.mallocCounter())
            let before = count()
            let aead = try AEAD(.aes256GCM, key: [UInt8](repeating: 1, count: 32))
            _ = try aead.seal(nonce: [UInt8](repeating: 0, count: 12), plaintext: [1, 2, 3])
            #expect(count() > before)
        }
    }
#endif
