#if canImport(Glibc)
    import Glibc
    import Testing

    @testable import TURNCore

    /// Checks that the relay's per-packet lookups (ChannelData to a peer, data from a peer) do not allocate.
    ///
    /// It needs the malloc counter of `Tests/MallocCounter` preloaded into the test process, and is skipped
    /// without it; `make test` runs the `AllocationTests` suites a second time with it preloaded.
    @Suite("TURN fast-path allocations")
    struct ChannelDataAllocationTests {
        typealias Counter = @convention(c) () -> UInt

        static func mallocCounter() -> Counter? {
            dlsym(nil, "chatmail_test_malloc_count").map { unsafeBitCast($0, to: Counter.self) }
        }

        @Test(
            "ChannelData and peer data lookups do not allocate (runs only with a preloaded malloc counter)",
            .enabled(if: mallocCounter() != nil, "no malloc counter preloaded"))
        func lookupsDoNotAllocate() throws {
            let count = try #require(Self.mallocCounter())
            let harness = EngineHarness()
            _ = try harness.allocate()
            let peer = STUNAddress("8.8.8.8:5000")!
            #expect(
                try harness.request(.channelBind, [.channelNumber(0x4001), .xorPeerAddress(peer)]).errorCode == nil)
            let tuple = harness.tuple
            let now = harness.now
            var found = 0
            _ = harness.engine.channelTarget(0x4001, from: tuple, length: 100, now: now)
            _ = harness.engine.inboundDelivery(from: peer, to: tuple, length: 100, now: now)
            let before = count()
            for _ in 0..<1000 {
                if harness.engine.channelTarget(0x4001, from: tuple, length: 100, now: now) != nil { found += 1 }
                if harness.engine.inboundDelivery(from: peer, to: tuple, length: 100, now: now) == .channelData(0x4001)
                {
                    found += 1
                }
            }
            let allocations = count() - before
            #expect(found == 2000)
            #expect(allocations == 0)

            // A channel to one of our own relayed addresses re-checks that it still is one (under the shared
            // state's lock), without allocating per packet: 20,000 lookups may cost the runtime a one-off
            // allocation or two (the lock's first use on a thread), never one each.
            let ours = STUNAddress("203.0.113.1:50999")!
            harness.shared.relayOpened(ours)
            #expect(
                try harness.request(.channelBind, [.channelNumber(0x4002), .xorPeerAddress(ours)]).errorCode == nil)
            _ = harness.engine.channelTarget(0x4002, from: tuple, length: 100, now: now)
            _ = harness.engine.inboundDelivery(from: ours, to: tuple, length: 100, now: now)
            let hairpinBefore = count()
            var hairpinFound = 0
            for _ in 0..<10000 {
                if harness.engine.channelTarget(0x4002, from: tuple, length: 100, now: now) != nil { hairpinFound += 1 }
                if harness.engine.inboundDelivery(from: ours, to: tuple, length: 100, now: now) == .channelData(0x4002)
                {
                    hairpinFound += 1
                }
            }
            #expect(hairpinFound == 20000)
            #expect(count() - hairpinBefore <= 4)
        }
    }
#endif
