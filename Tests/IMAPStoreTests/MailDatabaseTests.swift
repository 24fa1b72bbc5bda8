import Foundation
import GRDB
import IMAPCore
import Synchronization
import Testing

@testable import IMAPStore

final class Clock: Sendable {
    let value = Mutex<Int64>(1_700_000_000)
    func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
}

final class ChangeLog: Sendable {
    let value = Mutex<[Int64]>([])
}

@Suite struct MailDatabaseTests {
    let directory: String
    let clock = Clock()
    let changes = ChangeLog()
    let database: MailDatabase

    init() throws {
        directory = NSTemporaryDirectory() + "imap-store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var settings = MailDatabase.Settings(rules: AccountRules(domain: "example.org"))
        settings.quotaBytes = 1000
        settings.passwordIterations = 1000
        let clock = clock
        let changes = changes
        database = try MailDatabase(
            path: directory + "/imap.sqlite", settings: settings, now: { clock.value.withLock { $0 } },
            changed: { ids in changes.value.withLock { $0 += ids } })
    }

    @Test func passwordHashes() {
        let hash = PasswordHash.make("secret", iterations: 1000)
        #expect(hash.hasPrefix("$pbkdf2-sha256$1000$"))
        #expect(PasswordHash.verify("secret", against: hash))
        #expect(!PasswordHash.verify("Secret", against: hash))
        #expect(!PasswordHash.verify("secret", against: "$pbkdf2-sha256$0$AA==$AA=="))
        #expect(!PasswordHash.verify("secret", against: "garbage"))
        #expect(PasswordHash.make("secret", iterations: 1000) != hash)
    }

    @Test func firstLoginCreatesAccordingToRules() throws {
        #expect(try database.login(user: "short@example.org", password: "longenough") == nil)
        #expect(try database.login(user: "abcdefghi@other.org", password: "longenough") == nil)
        #expect(try database.login(user: "abcdefghi@example.org", password: "short") == nil)
        let account = try #require(try database.login(user: "ABCDEFGHI@example.org", password: "longenough"))
        #expect(account.address == "abcdefghi@example.org")
        #expect(try database.login(user: "abcdefghi@example.org", password: "longenough") == account)
        #expect(try database.login(user: "abcdefghi@example.org", password: "otherpassword") == nil)
        #expect(try database.mailboxes(account: account).map(\.name) == ["INBOX"])
        #expect(try database.recipientExists("abcdefghi@example.org"))
        #expect(try !database.recipientExists("nobody123@example.org"))
    }

    @Test func closedCreationRefusesNewNamesOnly() throws {
        var settings = MailDatabase.Settings(rules: AccountRules(domain: "example.org"))
        settings.passwordIterations = 1000
        let nocreate = directory + "/nocreate"
        settings.creationGate = AccountCreationGate(
            noCreatePath: nocreate, storeDirectory: directory, minFreeBytes: 0)
        let store = try MailDatabase(path: directory + "/gated.sqlite", settings: settings)
        #expect(settings.creationGate?.state().isOpen == true)
        let existing = try #require(try store.login(user: "abcdefghi@example.org", password: "longenough"))
        #expect(FileManager.default.createFile(atPath: nocreate, contents: nil))
        #expect(settings.creationGate?.state() == .closedByFile(nocreate))
        #expect(try store.login(user: "jklmnopqr@example.org", password: "longenough") == nil)
        #expect(try store.login(user: "abcdefghi@example.org", password: "longenough") == existing)
        try FileManager.default.removeItem(atPath: nocreate)
        // More free space asked for than any disk has.
        settings.creationGate?.minFreeBytes = .max
        let full = try MailDatabase(path: directory + "/gated.sqlite", settings: settings)
        guard case .lowDisk = settings.creationGate?.state() else {
            Issue.record("expected lowDisk")
            return
        }
        #expect(try full.login(user: "jklmnopqr@example.org", password: "longenough") == nil)
        #expect(try full.login(user: "abcdefghi@example.org", password: "longenough") == existing)
    }

    @Test func creationAskedOnlyWhenTheAccountWouldBeMade() throws {
        let asked = Mutex(0)
        func refuse() -> Bool {
            asked.withLock { $0 += 1 }
            return false
        }
        #expect(throws: MailStoreError.creationLimited) {
            try database.login(user: "abcdefghi@example.org", password: "longenough", mayCreate: refuse)
        }
        #expect(try database.login(user: "short@example.org", password: "longenough", mayCreate: refuse) == nil)
        #expect(try database.accounts().isEmpty)
        let limits = SourceLimits(.init(accountCreationsPerHour: 2), now: { 0 })
        for name in ["aaaaaaaa1", "aaaaaaaa2"] {
            #expect(
                try database.login(user: "\(name)@example.org", password: "longenough") {
                    limits.takeAccountCreation(from: "192.0.2.1")
                } != nil)
        }
        #expect(throws: MailStoreError.creationLimited) {
            try database.login(user: "aaaaaaaa3@example.org", password: "longenough") {
                limits.takeAccountCreation(from: "192.0.2.1")
            }
        }
        // Logging into an existing account never asks.
        #expect(try database.login(user: "aaaaaaaa1@example.org", password: "longenough", mayCreate: refuse) != nil)
        #expect(asked.withLock { $0 } == 1)
    }

    @Test func operatorAccounts() throws {
        #expect(try database.addAccount(address: "admin@example.org", password: "pw"))
        #expect(try !database.addAccount(address: "admin@example.org", password: "pw"))
        #expect(throws: MailStoreError.self) { try database.addAccount(address: "admin@elsewhere.org", password: "pw") }
        #expect(try database.login(user: "admin@example.org", password: "pw") != nil)
        #expect(try database.setPassword(address: "admin@example.org", password: "new"))
        #expect(try database.login(user: "admin@example.org", password: "pw") == nil)
        #expect(try database.accounts().map(\.address) == ["admin@example.org"])
        #expect(try database.deleteAccount(address: "admin@example.org"))
        #expect(try database.accounts().isEmpty)
    }

    @Test func deliveryUIDsFlagsQuotaAndExpunge() throws {
        let account = try #require(try database.login(user: "abcdefghi@example.org", password: "longenough"))
        let inbox = try #require(try database.mailbox(account: account, name: "INBOX"))
        let message = Array("Subject: x\r\n\r\nhello".utf8)
        #expect(
            try database.deliver(message, to: ["abcdefghi@example.org", "nobody123@example.org"]) == [
                .delivered, .unknownRecipient,
            ])
        #expect(try database.deliver(message, to: ["ABCDEFGHI@example.org"]) == [.delivered])
        #expect(try database.uids(mailbox: inbox.id) == [1, 2])
        #expect(try database.body(mailbox: inbox.id, uid: 2) == message)
        #expect(try database.mailbox(account: account, name: "INBOX")?.uidNext == 3)
        #expect(try database.quota(account: account).usedBytes == Int64(2 * message.count))
        #expect(try database.deliver(Array(repeating: 1, count: 990), to: ["abcdefghi@example.org"]) == [.overQuota])
        let flagged = try database.storeFlags(
            mailbox: inbox.id, uids: [1, 2, 9], operation: .add, flags: [Flag.seen, Flag.deleted])
        #expect(flagged.map(\.flags) == [[Flag.deleted, Flag.seen], [Flag.deleted, Flag.seen]])
        #expect(try database.expunge(mailbox: inbox.id, uids: [1]) == [1])
        #expect(try database.messages(mailbox: inbox.id, uids: [1, 2]).map(\.uid) == [2])
        #expect(try database.quota(account: account).usedBytes == Int64(message.count))
        // New UIDs keep increasing after an expunge; UIDVALIDITY stays.
        _ = try database.deliver(message, to: ["abcdefghi@example.org"])
        #expect(try database.uids(mailbox: inbox.id) == [2, 3])
        #expect(try database.mailbox(account: account, name: "INBOX")?.uidValidity == inbox.uidValidity)
        #expect(changes.value.withLock { $0 }.allSatisfy { $0 == inbox.id })
    }

    @Test func mailboxesCopyAndMetadata() throws {
        let account = try #require(try database.login(user: "abcdefghi@example.org", password: "longenough"))
        try database.createMailbox(account: account, name: "DeltaChat")
        #expect(throws: MailStoreError.mailboxExists) {
            try database.createMailbox(account: account, name: "DeltaChat")
        }
        let inbox = try #require(try database.mailbox(account: account, name: "INBOX"))
        let other = try #require(try database.mailbox(account: account, name: "DeltaChat"))
        #expect(other.uidValidity > inbox.uidValidity)
        _ = try database.deliver(Array("a".utf8), to: [account.address])
        try database.copy(mailbox: inbox.id, uids: [1], to: other.id)
        #expect(try database.uids(mailbox: other.id) == [1])
        try database.deleteMailbox(account: account, name: "DeltaChat")
        try database.createMailbox(account: account, name: "DeltaChat")
        #expect(try database.mailbox(account: account, name: "DeltaChat")!.uidValidity > other.uidValidity)
        try database.setMetadata(
            account: account, mailbox: "INBOX", entry: "/private/devicetoken", value: Array("t".utf8))
        #expect(
            try database.metadata(account: account, mailbox: "INBOX", entry: "/private/devicetoken") == Array("t".utf8))
        try database.setMetadata(account: account, mailbox: "INBOX", entry: "/private/devicetoken", value: nil)
        #expect(try database.metadata(account: account, mailbox: "INBOX", entry: "/private/devicetoken") == nil)
    }

    /// Issue 12: at the cap, replacing an existing entry was refused like adding one.
    @Test func metadataCapRefusesOnlyNewEntries() throws {
        let account = try #require(try database.login(user: "abcdefghi@example.org", password: "longenough"))
        for index in 0..<32 {
            try database.setMetadata(
                account: account, mailbox: "INBOX", entry: "/private/e\(index)", value: Array("v".utf8))
        }
        #expect(throws: MailStoreError.metadataTooMany) {
            try database.setMetadata(account: account, mailbox: "INBOX", entry: "/private/new", value: [1])
        }
        #expect(throws: MailStoreError.metadataTooMany) {
            try database.setMetadata(account: account, mailbox: "", entry: "/private/e0", value: [1])
        }
        try database.setMetadata(account: account, mailbox: "INBOX", entry: "/private/e0", value: Array("new".utf8))
        #expect(try database.metadata(account: account, mailbox: "INBOX", entry: "/private/e0") == Array("new".utf8))
        try database.setMetadata(account: account, mailbox: "INBOX", entry: "/private/e1", value: nil)
        try database.setMetadata(account: account, mailbox: "INBOX", entry: "/private/new", value: [1])
    }

    /// Issue 12: 140,000 keywords on one message were accepted and cost nothing.
    @Test func keywordsAreBoundedAndCountInTheQuota() throws {
        let account = try #require(try database.login(user: "abcdefghi@example.org", password: "longenough"))
        _ = try database.deliver(Array(repeating: UInt8(ascii: "x"), count: 100), to: [account.address])
        let inbox = try #require(try database.mailbox(account: account, name: "INBOX"))
        let keywords = (0..<64).map { "k\($0 + 10)" }  // 4 bytes each with the separator
        _ = try database.storeFlags(mailbox: inbox.id, uids: [1], operation: .add, flags: keywords + [Flag.seen])
        #expect(try database.quota(account: account).usedBytes == 100 + 64 * 4)
        #expect(throws: MailStoreError.limitReached("A message carries at most 64 keywords")) {
            try database.storeFlags(mailbox: inbox.id, uids: [1], operation: .add, flags: ["one-more"])
        }
        #expect(try database.messages(mailbox: inbox.id, uids: [1]).first?.flags.count == 65)
        // A copy carries its keywords' bytes; the quota (1000 bytes here) refuses growth past it.
        try database.createMailbox(account: account, name: "Other")
        let other = try #require(try database.mailbox(account: account, name: "Other"))
        #expect(
            try database.copy(mailbox: inbox.id, uids: [1, 7], to: other.id).map { [$0.source, $0.copy] } == [[1, 1]])
        #expect(try database.quota(account: account).usedBytes == 2 * (100 + 64 * 4))
        let long = (0..<40).map { "long-keyword-\($0 + 10)" }  // 17 bytes each
        #expect(throws: MailStoreError.quotaExceeded) {
            try database.storeFlags(mailbox: other.id, uids: [1], operation: .replace, flags: long)
        }
        #expect(try database.quota(account: account).usedBytes == 2 * (100 + 64 * 4))
        // System flags are free, even over quota; removing keywords gives the bytes back.
        _ = try database.storeFlags(mailbox: other.id, uids: [1], operation: .replace, flags: [Flag.deleted])
        #expect(try database.quota(account: account).usedBytes == 2 * 100 + 64 * 4)
        _ = try database.expunge(mailbox: inbox.id, uids: [1])
        #expect(try database.quota(account: account).usedBytes == 100)
    }

    @Test func appendStoresWithFlagsDateAndQuota() throws {
        let account = try #require(try database.login(user: "abcdefghi@example.org", password: "longenough"))
        let inbox = try #require(try database.mailbox(account: account, name: "INBOX"))
        _ = try database.deliver(Array("a".utf8), to: [account.address])
        let uid = try database.append(
            mailbox: inbox.id, message: Array("hello".utf8), flags: ["k1", Flag.seen], date: 42)
        #expect(uid == 2)
        #expect(
            try database.messages(mailbox: inbox.id, uids: [2])
                == [MessageInfo(uid: 2, flags: [Flag.seen, "k1"], internalDate: 42, size: 5)])
        #expect(try database.body(mailbox: inbox.id, uid: 2) == Array("hello".utf8))
        #expect(try database.quota(account: account).usedBytes == 1 + 5 + 3)
        #expect(changes.value.withLock { $0.last } == inbox.id)
        #expect(throws: MailStoreError.quotaExceeded) {
            try database.append(mailbox: inbox.id, message: Array(repeating: 1, count: 992), flags: [], date: nil)
        }
        #expect(throws: MailStoreError.limitReached("A message carries at most 64 keywords")) {
            try database.append(mailbox: inbox.id, message: [1], flags: (0..<65).map { "k\($0)" }, date: nil)
        }
        #expect(try database.uids(mailbox: inbox.id) == [1, 2])
    }

    @Test func sweepRemovesOldMailAndInactiveAccounts() throws {
        let old = try #require(try database.login(user: "oldoldold@example.org", password: "longenough"))
        _ = try database.deliver(Array("a".utf8), to: [old.address])
        clock.advance(10 * 86400)
        let recent = try #require(try database.login(user: "newnewnew@example.org", password: "longenough"))
        _ = try database.deliver(Array("b".utf8), to: [recent.address, old.address])
        let counts = try database.sweep(messageAge: 5 * 86400, inactiveAge: 8 * 86400)
        #expect(counts.messages == 1 && counts.accounts == 1)
        #expect(try database.accounts().map(\.address) == ["newnewnew@example.org"])
    }

    /// The session machine works over the database as over the memory store.
    @Test func sessionOverDatabase() throws {
        var session = IMAPSession(configuration: SessionConfiguration(), store: database)
        _ = try database.deliver(Array("Subject: x\r\n\r\nhi".utf8), to: ["abcdefghi@example.org"])  // unknown yet
        #expect(
            session.receive(Array("a LOGIN abcdefghi@example.org longenough".utf8)).responses.last?.text.hasPrefix(
                "a OK") == true)
        _ = try database.deliver(Array("Subject: x\r\n\r\nhi".utf8), to: ["abcdefghi@example.org"])
        #expect(session.receive(Array("b SELECT INBOX".utf8)).responses.map(\.text).contains("* 1 EXISTS"))
        #expect(
            session.receive(Array("c UID FETCH 1:* (FLAGS BODY.PEEK[])".utf8)).responses.map(\.text) == [
                "* 1 FETCH (UID 1 FLAGS () BODY[] {16}\r\nSubject: x\r\n\r\nhi)", "c OK FETCH completed",
            ])
    }

    // MARK: Push

    func account(_ localpart: String) throws -> Account {
        try #require(try database.login(user: "\(localpart)@example.org", password: "longenough"))
    }

    @Test func pushTokensAreKeptOnceEachBoundedAndExpire() throws {
        let alice = try account("aliceaaaa")
        try database.addPushToken(account: alice, token: Array("t1".utf8))
        try database.addPushToken(account: alice, token: Array("t2".utf8))
        try database.addPushToken(account: alice, token: Array("t1".utf8))
        #expect(try database.pushTokens(account: alice) == [Array("t1".utf8), Array("t2".utf8)])
        for index in 3...16 { try database.addPushToken(account: alice, token: Array("t\(index)".utf8)) }
        #expect(throws: MailStoreError.pushTokensTooMany) {
            try database.addPushToken(account: alice, token: Array("t17".utf8))
        }
        // 10,000 SETMETADATA of a known token in a row: fine, still 16.
        for _ in 0..<10_000 { try database.addPushToken(account: alice, token: Array("t1".utf8)) }
        #expect(try database.pushTokens(account: alice).count == 16)
        // t1 is sent again later; the others are not, and expire after 90 days.
        clock.advance(80 * 86400)
        try database.addPushToken(account: alice, token: Array("t1".utf8))
        clock.advance(11 * 86400)
        #expect(try database.expirePushTokens(maxAge: 90 * 86400) == 15)
        #expect(try database.pushTokens(account: alice) == [Array("t1".utf8)])
    }

    @Test func deliveryQueuesOneNotificationPerTokenAndCoalesces() throws {
        let alice = try account("aliceaaaa")
        let bob = try account("bobbbbbbb")
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        try database.addPushToken(account: alice, token: Array("tablet".utf8))
        // Sent by alice to herself (and to bob, who has no token): nothing queued.
        _ = try database.deliver(Array("x".utf8), from: "ALICEaaaa@example.org", to: [alice.address, bob.address])
        #expect(try database.pendingPushCount() == 0)
        _ = try database.deliver(Array("x".utf8), from: bob.address, to: [alice.address])
        var due = try database.duePushes(limit: 10, excluding: [])
        #expect(due.map(\.token) == [Array("phone".utf8), Array("tablet".utf8)])
        #expect(due.allSatisfy { $0.generation == 1 && $0.failures == 0 })
        // More mail while queued: still two notifications.
        for _ in 0..<5 { _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address]) }
        #expect(try database.pendingPushCount() == 2)
        #expect(try database.duePushes(limit: 10, excluding: [due[0].tokenID]).map(\.token) == [Array("tablet".utf8)])
        #expect(try database.duePushes(limit: 1, excluding: []).count == 1)

        // Taken at generation 1; the queue is at 6 now: posted, then once more at once.
        let schedule = PushSchedule()
        #expect(try database.settlePush(due[0], result: .delivered, schedule: schedule) == .again)
        due = try database.duePushes(limit: 10, excluding: [])
        #expect(due.map(\.generation) == [6, 6])
        #expect(try database.settlePush(due[0], result: .delivered, schedule: schedule) == .done)
        // The tablet's proxy says 410: the token goes.
        #expect(try database.settlePush(due[1], result: .gone, schedule: schedule) == .deleteToken)
        #expect(try database.pushTokens(account: alice) == [Array("phone".utf8)])
        #expect(try database.pendingPushCount() == 0)
    }

    @Test func failedPostsAreRetriedOnTheScheduleThenDropped() throws {
        let alice = try account("aliceaaaa")
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address])
        let schedule = PushSchedule(base: 8, giveUpAfter: 100)
        var pending = try #require(try database.duePushes(limit: 1, excluding: []).first)
        #expect(
            try database.settlePush(pending, result: .failed("status 500"), schedule: schedule)
                == .retry(due: clock.value.withLock { $0 } + 8, failures: 1))
        #expect(try database.duePushes(limit: 1, excluding: []).isEmpty)
        #expect(try database.nextPushDue() == clock.value.withLock { $0 } + 8)
        clock.advance(8)
        pending = try #require(try database.duePushes(limit: 1, excluding: []).first)
        #expect(pending.failures == 1)
        #expect(
            try database.settlePush(pending, result: .failed("refused"), schedule: schedule)
                == .retry(due: clock.value.withLock { $0 } + 64, failures: 2))
        clock.advance(64)
        pending = try #require(try database.duePushes(limit: 1, excluding: []).first)
        // 72 s after queueing; the next would be past 100: the last try is at 100.
        #expect(
            try database.settlePush(pending, result: .failed("timeout"), schedule: schedule)
                == .retry(due: clock.value.withLock { $0 } + 28, failures: 3))
        clock.advance(28)
        pending = try #require(try database.duePushes(limit: 1, excluding: []).first)
        #expect(try database.settlePush(pending, result: .failed("status 503"), schedule: schedule) == .drop)
        #expect(try database.pendingPushCount() == 0)
        #expect(try database.pushTokens(account: alice) == [Array("phone".utf8)])
    }

    @Test func pushOffQueuesNothing() throws {
        var settings = MailDatabase.Settings(rules: AccountRules(domain: "example.org"))
        settings.passwordIterations = 1000
        settings.queuePushes = false
        let database = try MailDatabase(path: directory + "/off.sqlite", settings: settings)
        let alice = try #require(try database.login(user: "aliceaaaa@example.org", password: "longenough"))
        try database.addPushToken(account: alice, token: Array("phone".utf8))
        _ = try database.deliver(Array("x".utf8), from: "a@elsewhere.org", to: [alice.address])
        #expect(try database.pendingPushCount() == 0)
    }

    /// A token stored the old way (one METADATA entry) moves to the token table.
    @Test func oldDeviceTokenEntryIsMigrated() throws {
        let path = directory + "/old.sqlite"
        do {
            let queue = try DatabaseQueue(path: path)
            try MailDatabase.migrator.migrate(queue, upTo: "v2-keyword-bytes")
            try queue.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO account (id, address, password, created, last_login) VALUES (1, 'aliceaaaa@example.org', 'x', 0, 0)"
                )
                try db.execute(
                    sql: "INSERT INTO metadata VALUES (1, 'INBOX', '/private/devicetoken', CAST('openpgp:old' AS BLOB))"
                )
            }
        }
        var settings = MailDatabase.Settings(rules: AccountRules(domain: "example.org"))
        settings.passwordIterations = 1000
        let database = try MailDatabase(path: path, settings: settings)
        let alice = Account(id: 1, address: "aliceaaaa@example.org")
        #expect(try database.pushTokens(account: alice) == [Array("openpgp:old".utf8)])
        #expect(try database.metadata(account: alice, mailbox: "INBOX", entry: "/private/devicetoken") == nil)
    }
}
