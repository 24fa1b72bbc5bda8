import Foundation
import Logging
import NIOCore
import ShadowsocksCore
import Testing

@testable import ShadowsocksServer

/// Issue 12.6: the salt history outlives a restart (a clean one entirely; after a crash, what was saved), and
/// after a crash SIP022 requests from before the start are refused.
@Suite("Salt history saved across restarts")
struct SaltPersistenceTests {
    static func state(file: String, method: ShadowsocksMethod = .aes256GCM, capacity: Int = 100) throws -> ServerState {
        let credential =
            method.is2022
            ? ShadowsocksCredential(method: method, keyText: method.generateKeyText())!
            : ShadowsocksCredential(method: method, keyText: "salt-test")!
        let policy = DestinationPolicy(
            names: ["chat.example.org"], addresses: [], upstreams: [993: .init(host: "127.0.0.1", port: 1)])
        return try ServerState(
            settings: ShadowsocksSettings(
                credential: credential, policy: policy, replayHistory: capacity, saltFile: file),
            logger: Logger(label: "test"))
    }

    static func temporaryFile() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ss-salts-\(UUID().uuidString)"
        ).path
        return directory + "/state/salts"
    }

    static func salt(_ first: UInt8) -> [UInt8] { (0..<32).map { first &+ UInt8($0) } }

    @Test("a clean stop keeps every salt, and the next run has no timestamp floor")
    func cleanRestart() throws {
        let file = Self.temporaryFile()
        let first = try Self.state(file: file)
        #expect(first.earliestTimestamp == 0)  // no file yet: a first start
        #expect(first.remember(requestSalt: Self.salt(1), responseSalt: Self.salt(2)))
        #expect(first.remember(requestSalt: Self.salt(3), responseSalt: Self.salt(4)))
        first.saveSalts(stop: true)
        #expect(!first.remember(requestSalt: Self.salt(5), responseSalt: nil), "accepted after the final save")

        let second = try Self.state(file: file)
        #expect(second.earliestTimestamp == 0)
        for replayed in [1, 2, 3, 4] as [UInt8] {
            #expect(!second.remember(requestSalt: Self.salt(replayed), responseSalt: nil), "salt \(replayed)")
        }
        #expect(second.remember(requestSalt: Self.salt(5), responseSalt: nil))
        #expect(second.counters.replays == 4)
    }

    @Test("after a crash: what the periodic save appended is kept, and 2022 requests before the start are refused")
    func crashRestart() throws {
        let file = Self.temporaryFile()
        let first = try Self.state(file: file)
        #expect(first.remember(requestSalt: Self.salt(1), responseSalt: nil))
        first.saveSalts()
        #expect(first.remember(requestSalt: Self.salt(2), responseSalt: nil))  // not saved: lost in the "crash"

        let before = UInt64(time(nil))
        let second = try Self.state(file: file)
        #expect(second.earliestTimestamp >= before)
        #expect(!second.remember(requestSalt: Self.salt(1), responseSalt: nil))
        #expect(second.remember(requestSalt: Self.salt(2), responseSalt: nil))
    }

    @Test("the file stays bounded: rewritten whole once it grew by the history's capacity")
    func bounded() throws {
        let file = Self.temporaryFile()
        let state = try Self.state(file: file, capacity: 100)
        for round in 0..<50 {
            for index in 0..<20 {
                var salt = Self.salt(0)
                salt[0] = UInt8(index)
                salt[1] = UInt8(round)
                #expect(state.remember(requestSalt: salt, responseSalt: nil))
            }
            state.saveSalts()
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int
            #expect(size <= SaltLog.headerLength + 32 * 300, "round \(round): \(size) bytes")
        }
        // The latest salts survive a restart.
        let restarted = try Self.state(file: file, capacity: 100)
        var latest = Self.salt(0)
        latest[0] = 19
        latest[1] = 49
        #expect(!restarted.remember(requestSalt: latest, responseSalt: nil))
    }

    @Test("an unreadable history counts as a crash")
    func corruptFile() throws {
        let file = Self.temporaryFile()
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("not a salt log".utf8).write(to: URL(fileURLWithPath: file))
        let state = try Self.state(file: file)
        #expect(state.earliestTimestamp > 0)
        #expect(state.remember(requestSalt: Self.salt(1), responseSalt: nil))
    }
}
