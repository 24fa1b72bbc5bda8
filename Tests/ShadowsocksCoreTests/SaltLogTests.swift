import NIOCore
import Testing

@testable import ShadowsocksCore

@Suite("Salt history across restarts")
struct SaltLogTests {
    @Test("a saved history restores every salt, older generation first")
    func restoreHistory() {
        var history = SaltHistory(capacity: 4)
        let salts = (0..<7).map { run(UInt8($0 * 10), count: 32) }
        for salt in salts { history.insert(salt) }
        #expect(history.count == 7)
        let file = SaltLog.encode(history.salts, saltLength: 32, cleanStop: true)
        #expect(file.count == SaltLog.headerLength + 7 * 32)
        let contents = SaltLog.decode(file, saltLength: 32)
        #expect(contents?.cleanStop == true)
        var restored = SaltHistory(capacity: 4)
        for salt in contents?.salts ?? [] { restored.insert(salt) }
        for salt in salts { #expect(restored.contains(salt)) }
        #expect(!restored.contains(run(1, count: 32)))
        // The newest generation stays the newest: one more insert drops the older one, as it would have.
        #expect(restored.salts.suffix(3).allSatisfy { history.salts.suffix(3).contains($0) })
    }

    @Test("appended records follow the header; a partial last record (a crash mid-write) is ignored")
    func appendedAndTruncated() {
        var file = SaltLog.encode([run(0, count: 16)], saltLength: 16, cleanStop: false)
        file += SaltLog.records([run(16, count: 16), run(32, count: 16)], saltLength: 16)
        file += run(48, count: 5)
        let contents = SaltLog.decode(file, saltLength: 16)
        #expect(
            contents
                == SaltLog.Contents(
                    cleanStop: false, salts: [run(0, count: 16), run(16, count: 16), run(32, count: 16)]))
    }

    @Test("other files and other salt lengths are not read as a history")
    func foreignFiles() {
        let file = SaltLog.encode([run(0, count: 32)], saltLength: 32, cleanStop: true)
        #expect(SaltLog.decode(file, saltLength: 16) == nil)
        #expect(SaltLog.decode(Array(file.prefix(15)), saltLength: 32) == nil)
        var wrongMagic = file
        wrongMagic[0] ^= 1
        #expect(SaltLog.decode(wrongMagic, saltLength: 32) == nil)
        #expect(SaltLog.decode(SaltLog.header(saltLength: 32, cleanStop: false), saltLength: 32)?.salts == [])
    }

    @Test("after an unclean stop, SIP022 requests stamped before the start are refused, later ones accepted")
    func earliestTimestamp() throws {
        let credential = StreamTests.credential2022(.blake3AES256GCM)
        let salt = run(0x40, count: 32)
        let stamped = StreamTests.timestamp
        func outcome(earliest: UInt64) throws -> ShadowsocksError? {
            var handshake = ServerHandshake(credential: credential, earliestTimestamp: earliest)
            var input = try StreamTests.request2022(credential, salt: salt)
            switch handshake.receive(&input, now: stamped + 5) {
            case .failed(let error): return error
            case .accepted: return nil
            case .needMore: return .header
            }
        }
        #expect(try outcome(earliest: 0) == nil)
        #expect(try outcome(earliest: stamped) == nil)
        #expect(try outcome(earliest: stamped + 1) == .timestamp)
    }
}
