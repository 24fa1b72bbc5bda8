import ChatmailConfig
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import ChatmailSidecar

/// `Listeners.bind`: one port over several loops, the per-source cap, the accept backoff, and the
/// error a failed bind becomes.
@Suite struct ListenersTests {
    /// Echoes what it reads; NIO closes it when the client does.
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    static func echoListeners(limit: SourceConnectionLimit, loops: Int = 2) async throws -> [any Channel] {
        let group = MultiThreadedEventLoopGroup.singleton
        return try await Listeners.bind(
            .tcp(host: "127.0.0.1", port: 0), loops: Array(group.makeIterator().prefix(loops)), limit: limit
        ) { channel, _ in
            try channel.pipeline.syncOperations.addHandler(Echo())
        }
    }

    @Test func oneRealPortOnEveryLoopAndTheGuardsInEachPipeline() async throws {
        let listeners = try await Self.echoListeners(limit: .unlimited, loops: 2)
        defer { for channel in listeners { channel.close(promise: nil) } }
        #expect(listeners.count == 2)
        let port = try #require(listeners[0].localAddress?.port)
        #expect(port != 0)
        #expect(listeners.map { $0.localAddress?.port } == [port, port])
        for listener in listeners {
            // The cap and the accept backoff (test_listener_guards.py runs a child out of descriptors).
            try await listener.pipeline.containsHandler(type: ListenerGuardHandler.self).get()
        }
        let client = try TestClient(to: port)
        #expect(try client.echoes())
    }

    @Test func aConnectionOverThePerSourceCapIsClosedAndOtherSourcesStillGetIn() async throws {
        let limit = SourceConnectionLimit(maxPerSource: 3, logger: Logger(label: "test"))
        let listeners = try await Self.echoListeners(limit: limit)
        defer { for channel in listeners { channel.close(promise: nil) } }
        let port = try #require(listeners[0].localAddress?.port)

        var admitted: [TestClient] = []
        for _ in 0..<3 {
            let client = try TestClient(to: port)
            #expect(try client.echoes())
            admitted.append(client)
        }
        let over = try TestClient(to: port)
        #expect(try over.isClosedByServer())
        #expect(limit.refused == 1)
        let other = try TestClient(to: port, from: "127.0.0.2")
        #expect(try other.echoes(), "another source is not affected")
        for client in admitted { #expect(try client.echoes(), "the admitted ones keep being served") }

        // A closed connection gives its place back.
        admitted.removeLast().close()
        let source = try #require(try? SocketAddress(ipAddress: "127.0.0.1", port: 0))
        for _ in 0..<200 where limit.openConnections(from: source) > 2 {
            try await Task.sleep(for: .milliseconds(10))
        }
        let again = try TestClient(to: port)
        #expect(try again.echoes())
    }

    @Test func sourcesAreAddressesAndIPv6Slash64s() throws {
        func key(_ text: String) throws -> SourceKey? { SourceKey(try SocketAddress(ipAddress: text, port: 1)) }
        #expect(try key("192.0.2.1") == key("::ffff:192.0.2.1"))
        #expect(try key("192.0.2.1") != key("192.0.2.2"))
        #expect(try key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"))
        #expect(try key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(try key("0.0.0.1") != key("::1"))
        #expect(SourceKey(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
    }

    @Test func aTakenPortIsAnEnvironmentErrorAndNothingStaysBound() async throws {
        let taken = try await Self.echoListeners(limit: .unlimited, loops: 1)
        defer { taken[0].close(promise: nil) }
        let port = try #require(taken[0].localAddress?.port)
        let group = MultiThreadedEventLoopGroup.singleton
        let limit = SourceConnectionLimit.unlimited
        await #expect {
            _ = try await Listeners.bindAll(limit: limit) { listeners in
                try await listeners.bind(.tcp(host: "127.0.0.1", port: 0), loops: [group.next()]) { _, _ in }
                try await listeners.bind(.tcp(host: "127.0.0.1", port: port), loops: [group.next()]) { _, _ in }
            }
        } throws: { error in
            guard case SidecarError.environment(let why) = error else { return false }
            return why.contains("127.0.0.1:\(port)") && Sidecar.exitStatus(for: error) == 1
        }
        #expect(
            await #expect(throws: SidecarError.self) {
                _ = try await Listeners.bind(
                    .unix(path: "/proc/no-such-directory/x.sock"), loops: [group.next()], limit: limit
                ) { _, _ in }
            }.map { Sidecar.exitStatus(for: $0) } == 1)
    }

    @Test func theCapComesFromTheChildSection() async throws {
        let path = try SidecarTests.configurationFile("[imap]\nmax_connections_per_source = 7")
        let status = await Sidecar.run(
            name: "imap", arguments: ["chatmail-imap", "--config", path], environment: [:], handlingSignals: false
        ) { sidecar in
            #expect(sidecar.connectionLimit.maxPerSource == 7)
        }
        #expect(status == 0)
        let other = await Sidecar.run(
            name: "turn", arguments: ["chatmail-turn", "--config", path], environment: [:], handlingSignals: false
        ) { sidecar in
            #expect(sidecar.connectionLimit.maxPerSource == ChildSettings.defaultMaxConnectionsPerSource)
        }
        #expect(other == 0)
    }
}

/// A blocking loopback TCP client with a receive timeout.
final class TestClient {
    let fd: Int32

    init(to port: Int, from source: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, connected == 0 else {
            let error = errno
            Glibc.close(fd)
            throw IOError(errnoCode: error, reason: "connect")
        }
    }

    deinit { Glibc.close(fd) }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends a line and reads it back.
    func echoes() throws -> Bool {
        let line = Array("ping\n".utf8)
        guard send(fd, line, line.count, Int32(MSG_NOSIGNAL)) == line.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 16)
        var got = 0
        while got < line.count {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, line.count - got, 0) }
            guard count > 0 else { return false }
            got += count
        }
        return Array(buffer[0..<got]) == line
    }

    /// Whether the server ends the connection (EOF or reset) before the receive timeout.
    func isClosedByServer() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }
}
