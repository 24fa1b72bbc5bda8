import Testing

@testable import TURNCore

@Suite("Allocation state, caches and quotas")
struct StateTests {
    let tuple = FiveTuple(
        client: STUNAddress("198.51.100.7:40000")!, server: STUNAddress("203.0.113.1:3478")!, transport: .udp)
    let peer = STUNAddress("192.0.2.200:6000")!.withPort(6000)

    func allocation(limits: AllocationLimits = AllocationLimits()) -> Allocation {
        Allocation(
            fiveTuple: tuple, username: "u", key: [], relays: [(STUNAddress("203.0.113.1:50000")!, RelayID(1))],
            lifetime: 600,
            now: 0, limits: limits)
    }

    @Test("lifetimes: default, capped, zero deletes")
    func lifetimes() {
        let limits = AllocationLimits()
        #expect(limits.lifetime(requested: nil) == 600)
        #expect(limits.lifetime(requested: 30) == 600)
        #expect(limits.lifetime(requested: 1200) == 1200)
        #expect(limits.lifetime(requested: 99999) == 3600)
        #expect(limits.lifetime(requested: 0) == 0)
        #expect(allocation().isExpired(now: 599) == false)
        #expect(allocation().isExpired(now: 600))
    }

    @Test("permissions are per host, expire after 300 s and are bounded")
    func permissions() {
        var limits = AllocationLimits()
        limits.maximumPermissions = 2
        var state = allocation(limits: limits)
        #expect(!state.hasPermission(peer, now: 0))
        state.installPermission(peer, now: 0)
        #expect(state.hasPermission(STUNAddress("192.0.2.200:1")!, now: 299))
        #expect(!state.hasPermission(peer, now: 300))
        state.installPermission(peer, now: 200)
        #expect(state.hasPermission(peer, now: 499))
        let others = [STUNAddress("192.0.2.1:1")!, STUNAddress("192.0.2.2:1")!]
        #expect(state.canInstallPermissions([others[0]], now: 200))
        #expect(!state.canInstallPermissions(others, now: 200))
        #expect(state.canInstallPermissions(others, now: 500))  // the first has expired by then
    }

    @Test("channels: bind, refresh, conflicts, quarantine, lookup both ways")
    func channels() throws {
        var state = allocation()
        try state.bindChannel(0x4000, to: peer, now: 0)
        #expect(state.peer(onChannel: 0x4000, now: 10) == peer)
        #expect(state.channel(for: peer, now: 10) == 0x4000)
        #expect(state.hasPermission(peer, now: 10))
        #expect(state.peer(onChannel: 0x4001, now: 10) == nil)
        #expect(state.peer(onChannel: 0x3FFF, now: 10) == nil)
        #expect(throws: Allocation.ChannelBindFailure.conflict) {
            try state.bindChannel(0x4000, to: STUNAddress("192.0.2.201:6000")!, now: 10)
        }
        #expect(throws: Allocation.ChannelBindFailure.conflict) {
            try state.bindChannel(0x4001, to: peer, now: 10)
        }
        try state.bindChannel(0x4000, to: peer, now: 500)  // refresh
        #expect(state.peer(onChannel: 0x4000, now: 1099) == peer)
        #expect(state.peer(onChannel: 0x4000, now: 1100) == nil)
        // Quarantined for 300 s after expiry, free afterwards.
        #expect(throws: Allocation.ChannelBindFailure.conflict) {
            try state.bindChannel(0x4000, to: STUNAddress("192.0.2.201:6000")!, now: 1200)
        }
        state.sweep(now: 1400)
        #expect(state.channels.isEmpty)
        try state.bindChannel(0x4FFF, to: STUNAddress("192.0.2.201:6000")!, now: 1400)
        #expect(state.peer(onChannel: 0x4FFF, now: 1400) == STUNAddress("192.0.2.201:6000"))
        // RFC 5766's numbers above 0x4FFF (coturn's client uses them) are found too.
        try state.bindChannel(0x7ABC, to: STUNAddress("192.0.2.202:6000")!, now: 1400)
        #expect(state.peer(onChannel: 0x7ABC, now: 1400) == STUNAddress("192.0.2.202:6000"))
        #expect(state.peer(onChannel: 0x7ABD, now: 1400) == nil)
        #expect(state.peer(onChannel: 0x4FFF, now: 1400) == STUNAddress("192.0.2.201:6000"))
    }

    @Test("bandwidth cap per second and direction")
    func bandwidth() {
        var limits = AllocationLimits()
        limits.bandwidthBytesPerSecond = 1000
        var state = allocation(limits: limits)
        let r1 = state.admit(bytes: 600, outbound: true, now: 1)
        #expect(r1)
        let r2 = state.admit(bytes: 600, outbound: true, now: 1)
        #expect(!r2)
        let r3 = state.admit(bytes: 600, outbound: false, now: 1)
        #expect(r3)
        let r4 = state.admit(bytes: 600, outbound: true, now: 2)
        #expect(r4)
        var unlimited = allocation()
        let r5 = unlimited.admit(bytes: 1 << 30, outbound: true, now: 1)
        #expect(r5)
    }

    @Test("transaction cache: hit, expiry, bounded")
    func transactionCache() {
        var cache = TransactionCache(capacity: 3, lifetime: 40)
        let keys = (0..<5).map {
            TransactionCache.Key(fiveTuple: tuple, transactionID: STUNTransactionID(high: 0, low: UInt64($0)))
        }
        cache.store([1], for: keys[0], now: 0)
        #expect(cache.response(for: keys[0], now: 39) == [1])
        #expect(cache.response(for: keys[0], now: 40) == nil)
        for (index, key) in keys.enumerated() { cache.store([UInt8(index)], for: key, now: 1) }
        #expect(cache.count == 3)
        #expect(cache.response(for: keys[0], now: 1) == nil)
        #expect(cache.response(for: keys[4], now: 1) == [4])
        cache.sweep(now: 100)
        #expect(cache.count == 0)
    }

    @Test("allocation quotas per username, per client IP and total")
    func quotas() {
        var quotas = AllocationQuotas(perUsername: 2, perClientIP: 3, total: 4)
        let a = STUNAddress("192.0.2.1:1")!
        let b = STUNAddress("192.0.2.2:1")!
        let r6 = quotas.acquire(username: "x", client: a)
        #expect(r6)
        let r7 = quotas.acquire(username: "x", client: STUNAddress("192.0.2.1:2")!)
        #expect(r7)
        let r8 = quotas.acquire(username: "x", client: b)
        #expect(!r8)
        let r9 = quotas.acquire(username: "y", client: a)
        #expect(r9)
        let r10 = quotas.acquire(username: "z", client: a)
        #expect(!r10)
        let r11 = quotas.acquire(username: "z", client: b)
        #expect(r11)
        let r101 = quotas.acquire(username: "w", client: b)
        #expect(!r101)  // total
        quotas.release(username: "x", client: a)
        #expect(quotas.current == 3)
        let r12 = quotas.acquire(username: "w", client: b)
        #expect(r12)
        quotas.release(username: "nobody", client: a)
        #expect(quotas.current == 4)
    }

    @Test("error rate limiter per source and second")
    func rateLimiter() {
        var limiter = ErrorRateLimiter(perSecond: 2, maximumSources: 2)
        let a = STUNAddress("192.0.2.1:1")!
        let r13 = limiter.allow(a, now: 0)
        #expect(r13)
        let r14 = limiter.allow(STUNAddress("192.0.2.1:2")!, now: 0)
        #expect(r14)
        let r15 = limiter.allow(a, now: 0)
        #expect(!r15)
        let r16 = limiter.allow(STUNAddress("192.0.2.2:1")!, now: 0)
        #expect(r16)
        let r102 = limiter.allow(STUNAddress("192.0.2.3:1")!, now: 0)
        #expect(!r102)  // table full
        let r17 = limiter.allow(a, now: 1)
        #expect(r17)
    }

    @Test("stream framing tells STUN from ChannelData and refuses the rest")
    func framing() {
        #expect(TURNStreamFraming.frameLength(first4: 0x0001_0008) == 28)
        #expect(TURNStreamFraming.frameLength(first4: 0x0001_0006) == nil)
        #expect(TURNStreamFraming.frameLength(first4: 0x4000_0005) == 12)
        #expect(TURNStreamFraming.frameLength(first4: 0x4FFF_0000) == 4)
        #expect(TURNStreamFraming.frameLength(first4: 0x7FFE_0004) == 8)
        #expect(TURNStreamFraming.frameLength(first4: 0x7FFF_0004) == nil)
        #expect(TURNStreamFraming.frameLength(first4: 0x8000_0004) == nil)
        #expect(ChannelData(parsing: [0x40, 0x01, 0x00, 0x02, 9, 9, 0, 0])?.payload == 4..<6)
        #expect(ChannelData(parsing: [0x40, 0x01, 0x00, 0x05, 9, 9, 0, 0]) == nil)
        #expect(ChannelData(parsing: [0x7F, 0xFF, 0x00, 0x00]) == nil)
    }
}

extension STUNAddress {
    func withPort(_ port: UInt16) -> STUNAddress {
        var copy = self
        copy.port = port
        return copy
    }
}
