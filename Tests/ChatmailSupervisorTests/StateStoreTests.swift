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
        try reopened.setSetting("__IROH_ENABLED__", nil)
        #expect(try reopened.toggle("__IROH_ENABLED__") == nil)
        let mode = try FileManager.default.attributesOfItem(atPath: reopened.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the database holds the TURN secret")
    }

    @Test func turnSecretIsCreatedOnceAndRotatesKeepingThePrevious() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try StateStore(directory: directory)
        let first = try store.turnSecrets()
        #expect(first.count == 1 && first[0].count == 43)
        #expect(try StateStore(directory: directory).turnSecrets() == first, "stable across restarts")
        let second = try store.rotateTURNSecret()
        #expect(second.count == 2 && second[1] == first[0] && second[0] != first[0])
        let third = try store.rotateTURNSecret()
        #expect(third == [third[0], second[0]])
        #expect(try store.turnSecrets() == third)
    }
}
