import Foundation
import Synchronization
import Testing

@testable import ChatmailTLS

/// Several processes making the development certificate at once (the first start of the bundle):
/// nobody may ever read a half-made pair, and the pair left behind must match.
@Suite struct DevelopmentCertificateRaceTests {
    @Test func concurrentMakersAndAReaderNeverSeeAHalfWrittenPair() throws {
        for round in 0..<20 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("devrace-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let identity = TLSIdentity(
                certificatePath: directory + "/dev-cert.pem", keyPath: directory + "/dev-key.pem")
            let failures = Mutex<[String]>([])
            let makersDone = Atomic<Int>(0)
            let makers = 4
            DispatchQueue.concurrentPerform(iterations: makers + 1) { index in
                if index < makers {
                    do {
                        _ = try DevelopmentCertificate.ensure(in: directory, names: ["localhost"])
                    } catch {
                        failures.withLock { $0.append("maker: \(error)") }
                    }
                    makersDone.add(1, ordering: .sequentiallyConsistent)
                    return
                }
                // The reader: whenever both files are there, they must load as a matching pair.
                while makersDone.load(ordering: .sequentiallyConsistent) < makers {
                    let files = FileManager.default
                    guard files.fileExists(atPath: identity.certificatePath), files.fileExists(atPath: identity.keyPath)
                    else { continue }
                    do {
                        _ = try TLSContext(server: [identity], retry: .none)
                    } catch {
                        failures.withLock { $0.append("reader: \(error)") }
                    }
                }
            }
            #expect(failures.withLock { $0 } == [], "round \(round)")
            #expect(throws: Never.self, "round \(round): the pair left behind matches") {
                try TLSContext(server: [identity], retry: .none)
            }
        }
    }
}

/// A certificate and key read at the moment they are replaced: one old file and one new.
@Suite struct TLSLoadRetryTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("retry-\(UUID())").path

    /// Two development pairs, `a` and `b`, and a live identity holding a's certificate with b's key.
    func halfReplaced() throws -> (a: TLSIdentity, b: TLSIdentity, live: TLSIdentity) {
        let a = try DevelopmentCertificate.ensure(in: root + "/a", names: ["a.example"])
        let b = try DevelopmentCertificate.ensure(in: root + "/b", names: ["b.example"])
        try FileManager.default.createDirectory(atPath: root + "/live", withIntermediateDirectories: true)
        let live = DevelopmentCertificate.identity(in: root + "/live")
        try AtomicFile.write(contents(a.certificatePath), to: live.certificatePath, mode: 0o644)
        try AtomicFile.write(contents(b.keyPath), to: live.keyPath, mode: 0o600)
        return (a, b, live)
    }

    func contents(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func aMismatchedPairIsReadAgainUntilTheReplacementIsDone() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (a, _, live) = try halfReplaced()
        #expect {
            try TLSContext(server: [live], retry: .none)
        } throws: { error in
            "\(error)".contains("does not match") || "\(error)".contains("key values mismatch")
        }
        let pauses = Mutex<[Int]>([])
        let finishReplacement = try contents(a.keyPath)
        let context = try TLSContext(
            server: [live],
            retry: .init(attempts: 5) { attempt in
                pauses.withLock { $0.append(attempt) }
                try? AtomicFile.write(finishReplacement, to: live.keyPath, mode: 0o600)  // the other file arrives
            })
        #expect(context.names == [["a.example"]])
        #expect(pauses.withLock { $0 } == [1], "read twice: the mismatch, then the whole new pair")
    }

    @Test func aPairThatStaysMismatchedIsAnErrorAfterTheLastAttempt() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, _, live) = try halfReplaced()
        let pauses = Mutex<[Int]>([])
        #expect(throws: TLSError.self) {
            try TLSContext(
                server: [live], retry: .init(attempts: 3) { attempt in pauses.withLock { $0.append(attempt) } })
        }
        #expect(pauses.withLock { $0 } == [1, 2])
        #expect(TLSContext.LoadRetry.standard.attempts > 1, "the default retries")
    }

    @Test func atomicWritesReplaceWholeAndKeepTheMode() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let path = root + "/file"
        try AtomicFile.write(Array("old".utf8), to: path, mode: 0o600)
        try AtomicFile.write(Array("new contents".utf8), to: path, mode: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new contents")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["file"], "no temporary file left")
        #expect(throws: TLSError.self) { try AtomicFile.write([1], to: root + "/missing/file", mode: 0o600) }
    }
}
