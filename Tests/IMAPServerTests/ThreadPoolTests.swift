import Foundation
import IMAPCore
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import IMAPServer

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking line client on a loopback TCP port, with a receive timeout.
final class LineClient {
    struct Failure: Error {}
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, timeout: Int = 20) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure()
        }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array((text + "\r\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Lines up to and including the first that starts with `prefix`; nil on timeout or close.
    func until(_ prefix: String) -> String? {
        var text = ""
        while true {
            if let lf = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[...lf], as: UTF8.self)
                buffer.removeFirst(lf + 1)
                text += line
                if line.hasPrefix(prefix) { return text }
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}

/// Delivers into a `MemoryMailStore`.
struct MemoryBackend: LMTPBackend {
    let store: MemoryMailStore
    func recipientExists(_ address: String) throws -> Bool { try store.login(user: address, password: "secret") != nil }
    func deliver(_ message: [UInt8], from sender: String, to recipients: [String]) throws -> [DeliveryResult] {
        try recipients.map {
            _ = try store.deliver(message, to: $0); return .delivered
        }
    }
}

/// Runs blocking work on a thread of its own, off the concurrency pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

@Suite struct ThreadPoolTests {
    /// Commands of logged-in sessions that take long (here: LIST held at a gate) fill the command
    /// pool; another user's LOGIN and an LMTP delivery still complete while they hang.
    @Test func slowCommandsDoNotHoldUpLoginsOrDeliveries() async throws {
        let store = HookedStore()
        for user in ["a", "b", "c"] { store.base.addAccount("\(user)@example.org", password: "secret") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pools = IMAPServer.ThreadPools.start(cores: 1)
        var settings = IMAPServerSettings()
        settings.session.loginRequiresTLS = false
        let services = IMAPServices(
            store: store, notifier: MailboxNotifier(), settings: settings, tls: nil, logger: Logger(label: "test"),
            threadPool: pools.commands, loginThreadPool: pools.logins)
        let imap = try await IMAPServer.bindIMAP(
            host: "127.0.0.1", port: 0, implicitTLS: false, services: services, group: group)
        let lmtp = try await IMAPServer.bindLMTP(
            host: "127.0.0.1", port: 0, settings: LMTPSession.Settings(), backend: MemoryBackend(store: store.base),
            threadPool: pools.lmtp, group: group)
        let imapPort = imap.localAddress!.port!
        let lmtpPort = lmtp.localAddress!.port!
        let gate = DispatchSemaphore(value: 0)
        let waiting = Mutex(0)

        let results = try await onThread { () -> [String?] in
            let slow = try ["a", "b"].map { user in
                let client = try LineClient(port: imapPort)
                _ = client.until("* OK")
                client.send("1 LOGIN \(user)@example.org secret")
                _ = client.until("1 ")
                return client
            }
            store.beforeMailboxes.withLock {
                $0 = {
                    waiting.withLock { $0 += 1 }
                    _ = gate.wait(timeout: .now() + 30)
                }
            }
            for client in slow { client.send("2 LIST \"\" *") }
            // Both pool threads hang in LIST.
            for _ in 0..<2000 where waiting.withLock({ $0 }) < 2 { usleep(10000) }
            let other = try LineClient(port: imapPort, timeout: 10)
            _ = other.until("* OK")
            other.send("1 LOGIN c@example.org secret")
            let login = other.until("1 ")
            let stillWaiting = waiting.withLock { $0 } == 2 ? "still waiting" : nil
            let mta = try LineClient(port: lmtpPort, timeout: 10)
            _ = mta.until("220 ")
            for line in ["LHLO mx", "MAIL FROM:<>", "RCPT TO:<c@example.org>", "DATA", "Subject: x", "", "x", "."] {
                mta.send(line)
            }
            let delivered = mta.until("250 2.0.0")
            store.beforeMailboxes.withLock { $0 = nil }
            gate.signal()
            gate.signal()
            let listed = slow.map { $0.until("2 ") }
            return [login, delivered, stillWaiting] + listed
        }
        #expect(results[0]?.hasPrefix("1 OK") == true)
        #expect(results[1]?.contains("250 2.0.0 <c@example.org> delivered") == true)
        #expect(results[2] != nil)
        #expect(results[3...].allSatisfy { $0?.contains("2 OK LIST") == true })
        try await imap.close()
        try await lmtp.close()
        try await pools.shutdown()
        try await group.shutdownGracefully()
    }
}

@Suite struct LMTPConnectionHandlerTests {
    func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handler: LMTPConnectionHandler(
                settings: LMTPSession.Settings(), backend: MemoryBackend(store: MemoryMailStore()), threadPool: nil,
                sendTimeout: .seconds(7)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Commands wait while the MTA does not read its replies.
    @Test func inputWaitsWhileTheChannelIsNotWritable() throws {
        let channel = try makeChannel()
        #expect(try output(channel).hasPrefix("220 "))
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(ByteBuffer(string: "NOOP\r\nNOOP\r\n"))
        #expect(try output(channel) == "")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try output(channel) == "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n")
    }

    /// A client that leaves replies unread for the send timeout is dropped.
    @Test func aClientThatDoesNotReadIsDropped() throws {
        let channel = try makeChannel()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }
}
