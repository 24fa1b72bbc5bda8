import ChatmailControl
import ChatmailState
import ChatmailSupervisor
import Foundation
import Testing

@Suite struct StateStoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID())").path

    @Test func togglesPersistAcrossReopening() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(directory: directory)
        #expect(try store.toggle("__TURN_ENABLED__") == nil, "unset means: as configured")
        try store.setToggle("__TURN_ENABLED__", false)
        try store.setSetting("__IROH_ENABLED__", "yes")
        let reopened = try StateStore(directory: directory)
        #expect(try reopened.toggle("__TURN_ENABLED__") == false)
        #expect(try reopened.toggle("__IROH_ENABLED__") == true, "madmail's lenient spellings")
        // chatmailctl, with the supervisor down, reads the same toggles the supervisor starts with.
        #expect(try reopened.savedToggles() == ["turn": false, "iroh": true])
        #expect(try StateReader(directory: directory).savedToggles() == ["turn": false, "iroh": true])
        try reopened.setSetting("__IROH_ENABLED__", nil)
        #expect(try reopened.toggle("__IROH_ENABLED__") == nil)
        let mode = try FileManager.default.attributesOfItem(atPath: reopened.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the database holds the TURN secret")
    }

    @Test func turnSecretIsCreatedOnceAndRotatesKeepingThePrevious() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(directory: directory)
        let first = try store.turnSecrets(ttl: 3600)
        #expect(first.count == 1 && first[0].count == 43)
        #expect(try StateStore(directory: directory).turnSecrets(ttl: 3600) == first, "stable across restarts")
        let second = try store.rotateTURNSecret(ttl: 3600).secrets
        #expect(second.count == 2 && second[1] == first[0] && second[0] != first[0])
        let third = try store.rotateTURNSecret(ttl: 3600).secrets
        #expect(third == [third[0], second[0], first[0]])
        #expect(try store.turnSecrets(ttl: 3600) == third)
    }

    /// Two rotations: a credential minted under the first secret still verifies until it expires (the
    /// first rotation plus the TTL), then its secret is gone.
    @Test func turnSecretsStayWhileTheirCredentialsMayLive() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(directory: directory)
        let ttl = 86400
        let t0 = 1_800_000_000
        let first = try #require(try store.turnSecrets(ttl: ttl, now: t0).first)
        // Minted just before the first rotation: it expires at t0 + 100 + ttl.
        let credential = TURNCredential(secret: first, account: "a@example.org", now: t0 + 100, ttl: ttl)
        let expiry = try #require(Int(credential.username))
        func verifies(at now: Int) throws -> Bool {
            let secrets = try store.turnSecrets(ttl: ttl, now: now)
            return expiry > now
                && secrets.contains { TURNCredential(secret: $0, username: credential.username) == credential }
        }
        _ = try store.rotateTURNSecret(ttl: ttl, now: t0 + 100)
        _ = try store.rotateTURNSecret(ttl: ttl, now: t0 + 200)
        #expect(try store.turnSecrets(ttl: ttl, now: t0 + 200).count == 3)
        #expect(try verifies(at: t0 + 200))
        #expect(try verifies(at: expiry - 1))
        // Past the first rotation plus the TTL nothing it minted can be live: it is deleted.
        #expect(try store.turnSecrets(ttl: ttl, now: t0 + 100 + ttl).count == 2)
        #expect(try !verifies(at: t0 + 100 + ttl))
        #expect(try store.turnSecrets(ttl: ttl, now: t0 + 200 + ttl).count == 1)
    }

    @Test func turnSecretsAreBounded() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(directory: directory)
        _ = try store.turnSecrets(ttl: 3600, now: 1000)
        var cutShort = 0
        for second in 1...(StateStore.maximumTURNSecrets + 2) {
            let rotated = try store.rotateTURNSecret(ttl: 3600, now: 1000 + second)
            #expect(rotated.secrets.count <= StateStore.maximumTURNSecrets)
            cutShort += rotated.cutShort
        }
        #expect(cutShort == 3)
    }
}
