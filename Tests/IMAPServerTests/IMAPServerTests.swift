import IMAPCore
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import IMAPServer

@Suite struct ZlibStreamTests {
    @Test func roundTripAcrossManyWrites() throws {
        let compressor = try ZlibStream(.compress)
        let decompressor = try ZlibStream(.decompress)
        let allocator = ByteBufferAllocator()
        var rng = SystemRandomNumberGenerator()
        var sent: [UInt8] = []
        var received: [UInt8] = []
        for index in 0..<200 {
            let chunk = (0..<(index * 37 % 3000)).map { _ in UInt8.random(in: 0...20, using: &rng) }
            sent += chunk
            // Each write is sync-flushed: it decompresses on its own, without later data.
            let compressed = try compressor.process(ByteBuffer(bytes: chunk), allocator: allocator)
            received += Array(try decompressor.process(compressed, allocator: allocator).readableBytesView)
            #expect(received.count == sent.count)
        }
        #expect(received == sent)
    }

    @Test func decompressionIsBounded() throws {
        let compressor = try ZlibStream(.compress)
        let bomb = try compressor.process(
            ByteBuffer(repeating: 0, count: 10_000_000), allocator: ByteBufferAllocator())
        #expect(bomb.readableBytes < 20_000)
        #expect(throws: ZlibStream.Failure.self) {
            _ = try ZlibStream(.decompress).process(bomb, allocator: ByteBufferAllocator(), limit: 1_000_000)
        }
    }

    @Test func garbageIsAnError() throws {
        #expect(throws: ZlibStream.Failure.self) {
            _ = try ZlibStream(.decompress).process(
                ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x12]), allocator: ByteBufferAllocator())
        }
    }
}

final class Counter: Sendable {
    let value = Mutex(0)
}

@Suite struct MailboxNotifierTests {
    @Test func notifiesSubscribersOfThatMailboxOnly() {
        let loop = EmbeddedEventLoop()
        let notifier = MailboxNotifier()
        let first = Counter()
        let second = Counter()
        let token = notifier.subscribe(mailbox: 1, on: loop) { first.value.withLock { $0 += 1 } }
        _ = notifier.subscribe(mailbox: 2, on: loop) { second.value.withLock { $0 += 1 } }
        notifier.notify([1, 1, 3])
        loop.run()
        #expect(first.value.withLock { $0 } == 1 && second.value.withLock { $0 } == 0)
        notifier.unsubscribe(token)
        notifier.notify([1, 2])
        loop.run()
        #expect(first.value.withLock { $0 } == 1 && second.value.withLock { $0 } == 1)
        #expect(notifier.subscriberCount == 1)
    }
}

@Suite struct IMAPConnectionHandlerTests {
    func makeChannel(startTLS: Bool = true, implicitTLS: Bool = false) throws -> EmbeddedChannel {
        let store = MemoryMailStore()
        store.addAccount("user@example.org", password: "secret")
        var settings = IMAPServerSettings()
        settings.session.startTLSAvailable = startTLS
        settings.limits = IMAPLimits(lineLength: 100, literalSize: 50, commandSize: 1000)
        settings.handshakeTimeout = .seconds(5)
        settings.sendTimeout = .seconds(7)
        let services = IMAPServices(
            store: store, notifier: MailboxNotifier(), settings: settings, tls: nil, logger: Logger(label: "test"))
        let channel = EmbeddedChannel(handler: IMAPConnectionHandler(services: services, implicitTLS: implicitTLS))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test func greetingCommandsAndByteAtATime() throws {
        let channel = try makeChannel()
        // No certificate: STARTTLS is not offered even when configured.
        #expect(try output(channel) == "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID IDLE] chatmail IMAP ready\r\n")
        for byte in "a CAPABILITY\r\nb NOOP\r\n".utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(
            try output(channel)
                == "* CAPABILITY IMAP4rev1 LITERAL+ ID IDLE\r\na OK CAPABILITY completed\r\nb OK NOOP completed\r\n")
        try channel.writeInbound(ByteBuffer(string: "c LOGIN {4}\r\n"))
        #expect(try output(channel) == "+ Ready for literal data\r\n")
        try channel.writeInbound(ByteBuffer(string: "user \"wrong\"\r\nd STARTTLS\r\n"))
        #expect(
            try output(channel)
                == "c NO [AUTHENTICATIONFAILED] Authentication failed\r\nd BAD STARTTLS not available\r\n")
    }

    @Test func longLinesCloseTheConnection() throws {
        let channel = try makeChannel()
        _ = try output(channel)
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 200)))
        #expect(try output(channel) == "* BAD Line too long\r\n* BYE Line too long\r\n")
        #expect(!channel.isActive)
    }

    /// While the channel is not writable (the client does not read), commands wait: they do
    /// not run, and their answers are not queued.
    @Test func commandsWaitWhileTheChannelIsNotWritable() throws {
        let store = MemoryMailStore()
        store.addAccount("user@example.org", password: "secret")
        var settings = IMAPServerSettings()
        settings.session.loginRequiresTLS = false
        let services = IMAPServices(
            store: store, notifier: MailboxNotifier(), settings: settings, tls: nil, logger: Logger(label: "test"))
        let channel = EmbeddedChannel(handler: IMAPConnectionHandler(services: services, implicitTLS: false))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        _ = try output(channel)  // the greeting
        try channel.writeInbound(ByteBuffer(string: "a LOGIN user@example.org secret\r\n"))
        #expect(try output(channel) == "")
        #expect(services.sessionCount == 0)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try output(channel).hasPrefix("a OK ") && services.sessionCount == 1)
        #expect(channel.isActive)
    }

    /// A client that leaves our output unread for the send timeout is dropped.
    @Test func aClientThatDoesNotReadIsDropped() throws {
        let channel = try makeChannel()
        _ = try output(channel)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    /// The TLS port: no completed handshake within the deadline, the connection closes (here no
    /// TLS handler is there to complete it).
    @Test func aHandshakeThatDoesNotCompleteIsClosed() throws {
        let channel = try makeChannel(implicitTLS: true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    /// A deleted account's sessions get BYE and close, and leave no subscription behind.
    @Test func aDeletedAccountsSessionsEnd() async throws {
        let store = MemoryMailStore()
        let account = store.addAccount("user@example.org", password: "secret")
        var settings = IMAPServerSettings()
        settings.session.loginRequiresTLS = false
        let services = IMAPServices(
            store: store, notifier: MailboxNotifier(), settings: settings, tls: nil, logger: Logger(label: "test"))
        let channel = try await NIOAsyncTestingChannel.loggedIn(services)
        _ = try await channel.exchange("b SELECT INBOX")
        #expect(try await channel.exchange("c IDLE") == "+ idling\r\n")
        #expect(services.accountsInSession == [account.id] && services.sessionCount == 1)
        services.accountsDeleted([account.id])
        #expect(
            String(buffer: try await channel.waitForOutboundWrite(as: ByteBuffer.self)) == "* BYE Account deleted\r\n")
        try await channel.closeFuture.get()
        #expect(services.accountsInSession.isEmpty && services.sessionCount == 0)
        #expect(services.notifier.subscriberCount == 0)
    }

    @Test func logoutCloses() throws {
        let channel = try makeChannel()
        _ = try output(channel)
        try channel.writeInbound(ByteBuffer(string: "z LOGOUT\r\nafter NOOP\r\n"))
        #expect(try output(channel) == "* BYE Logging out\r\nz OK LOGOUT completed\r\n")
        #expect(!channel.isActive)
    }
}

/// A `MemoryMailStore` that can run a hook right after it has read a mailbox's UIDs: the moment
/// a delivery lands "between" a SELECT's snapshot and the session's subscription to the mailbox.
final class HookedStore: MailStore {
    let base = MemoryMailStore()
    let afterUIDs = Mutex<(@Sendable (Int64) -> Void)?>(nil)
    /// Runs before every mailbox listing (LIST), for as long as it is set.
    let beforeMailboxes = Mutex<(@Sendable () -> Void)?>(nil)

    func uids(mailbox: Int64) throws -> [UInt32] {
        let uids = try base.uids(mailbox: mailbox)
        let hook = afterUIDs.withLock { $0.take() }
        hook?(mailbox)
        return uids
    }

    func login(user: String, password: String, mayCreate: () -> Bool) throws -> Account? {
        try base.login(user: user, password: password, mayCreate: mayCreate)
    }
    func mailboxes(account: Account) throws -> [MailboxInfo] {
        let hook = beforeMailboxes.withLock { $0 }
        hook?()
        return try base.mailboxes(account: account)
    }
    func mailbox(account: Account, name: String) throws -> MailboxInfo? {
        try base.mailbox(account: account, name: name)
    }
    func createMailbox(account: Account, name: String) throws { try base.createMailbox(account: account, name: name) }
    func deleteMailbox(account: Account, name: String) throws { try base.deleteMailbox(account: account, name: name) }
    func messages(mailbox: Int64, uids: [UInt32]) throws -> [MessageInfo] {
        try base.messages(mailbox: mailbox, uids: uids)
    }
    func body(mailbox: Int64, uid: UInt32) throws -> [UInt8]? { try base.body(mailbox: mailbox, uid: uid) }
    func storeFlags(mailbox: Int64, uids: [UInt32], operation: StoreOperation, flags: [String]) throws
        -> [MessageInfo]
    {
        try base.storeFlags(mailbox: mailbox, uids: uids, operation: operation, flags: flags)
    }
    func expunge(mailbox: Int64, uids: [UInt32]) throws -> [UInt32] { try base.expunge(mailbox: mailbox, uids: uids) }
    func copy(mailbox: Int64, uids: [UInt32], to target: Int64) throws -> [(source: UInt32, copy: UInt32)] {
        try base.copy(mailbox: mailbox, uids: uids, to: target)
    }
    func quota(account: Account) throws -> Quota { try base.quota(account: account) }
    func append(mailbox: Int64, message: [UInt8], flags: [String], date: Int64?) throws -> UInt32 {
        try base.append(mailbox: mailbox, message: message, flags: flags, date: date)
    }
    func metadata(account: Account, mailbox: String, entry: String) throws -> [UInt8]? {
        try base.metadata(account: account, mailbox: mailbox, entry: entry)
    }
    func setMetadata(account: Account, mailbox: String, entry: String, value: [UInt8]?) throws {
        try base.setMetadata(account: account, mailbox: mailbox, entry: entry, value: value)
    }
    func addPushToken(account: Account, token: [UInt8]) throws { try base.addPushToken(account: account, token: token) }
}

@Suite struct IMAPNotificationTests {
    /// A delivery that commits after SELECT read the mailbox but before the connection subscribed
    /// to it notifies nobody; the session must still look again before it idles, or the client
    /// (Delta Chat) waits in IDLE for mail that is already there.
    @Test func deliveryBetweenSelectAndSubscriptionIsAnnouncedInIdle() async throws {
        let store = HookedStore()
        store.base.addAccount("user@example.org", password: "secret")
        let notifier = MailboxNotifier()
        let services = IMAPServices(
            store: store, notifier: notifier, settings: IMAPServerSettings(), tls: nil,
            logger: Logger(label: "test"))
        let channel = try await NIOAsyncTestingChannel.loggedIn(services)
        store.afterUIDs.withLock {
            $0 = { mailbox in
                _ = try? store.base.deliver(Array("Subject: hi\r\n\r\nhi\r\n".utf8), to: "user@example.org")
                notifier.notify([mailbox])
            }
        }
        let selected = try await channel.exchange("b SELECT INBOX")
        #expect(selected.contains("* 0 EXISTS\r\n") && selected.hasSuffix("b OK [READ-WRITE] SELECT completed\r\n"))
        #expect(notifier.subscriberCount == 1)
        #expect(try await channel.exchange("c IDLE") == "+ idling\r\n* 1 EXISTS\r\n")
        #expect(try await channel.exchange("DONE") == "c OK IDLE terminated\r\n")
        _ = try await channel.finish(acceptAlreadyClosed: true)
    }
}

final class Answers: Sendable {
    let next = Mutex<[(delay: Duration, entries: [String: String])]>([])
}

@Suite struct DiscoveryCacheTests {
    @Test func slowAnswersFallBackToTheLastOne() async throws {
        let answers = Answers()
        answers.next.withLock {
            $0 = [
                (.zero, ["turn": "a"]), (.seconds(2), ["turn": "b"]), (.zero, [:]),
            ]
        }
        let cache = DiscoveryCache(patience: .milliseconds(300)) { _ in
            let (delay, entries) = answers.next.withLock { $0.removeFirst() }
            try? await Task.sleep(for: delay)
            return entries
        }
        let first = await cache.current()
        #expect(first.entries == ["turn": "a"] && first.fresh)
        let clock = ContinuousClock()
        let started = clock.now
        let second = await cache.current()
        #expect(second.entries == ["turn": "a"] && !second.fresh)
        #expect(clock.now - started < .seconds(1))
        // The slow answer still lands and becomes the last one; an empty answer is an answer.
        try await Task.sleep(for: .seconds(2))
        #expect(cache.lastAnswer == ["turn": "b"])
        let third = await cache.current()
        #expect(third.entries == [:] && third.fresh)
    }
}

@Suite struct ResponseEncodingTests {
    @Test func chunkedEncodingMatchesTheCore() {
        let body = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        let lines = [
            ResponseLine([.text("* 1 FETCH (UID 1 BODY[] "), .literal(Array("a\r\nb".utf8)), .text(")")]),
            ResponseLine([.text("* 2 FETCH (BODY[] "), .literal(body), .text(" X "), .literal([]), .text(")")]),
            ResponseLine("a OK FETCH completed"),
        ]
        for chunkSize in [1, 7, 64, 100_000] {
            var output = ResponseOutput()
            output.append(lines)
            #expect(output.pendingBytes >= lines.map(\.encoded.count).reduce(0, +))
            var wire: [UInt8] = []
            while let chunk = output.nextChunk(allocator: ByteBufferAllocator(), chunkSize: chunkSize) {
                #expect(chunk.readableBytes <= chunkSize + 40 && chunk.readableBytes > 0)
                wire += chunk.readableBytesView
            }
            #expect(wire == lines.flatMap(\.encoded) && output.isEmpty && output.pendingBytes == 0)
        }
    }
}

/// Everything written so far, as text.
func output(_ channel: EmbeddedChannel) throws -> String {
    var text = ""
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
    return text
}

extension NIOAsyncTestingChannel {
    /// A connection to an IMAP handler over `services`, past the greeting and logged in as user@example.org.
    static func loggedIn(_ services: IMAPServices) async throws -> NIOAsyncTestingChannel {
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(
                IMAPConnectionHandler(services: services, implicitTLS: false))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        _ = try await channel.waitForOutboundWrite(as: ByteBuffer.self)  // greeting
        #expect(try await channel.exchange("a LOGIN user@example.org secret").hasPrefix("a OK "))
        return channel
    }

    /// Sends one command line and returns the next write.
    func exchange(_ command: String) async throws -> String {
        try await writeInbound(ByteBuffer(string: command + "\r\n"))
        return String(buffer: try await waitForOutboundWrite(as: ByteBuffer.self))
    }
}
