import ChatmailConfig
import ChatmailControl
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import ChatmailSidecar

/// The child side of the contract in `sidecars/README.md`, run in process against a fake
/// supervisor on a socketpair.
@Suite struct SidecarTests {
    /// A minimal valid configuration in a fresh directory; returns its path.
    static func configurationFile(_ extra: String = "") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sidecar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("supervisor.conf").path
        let text = """
            [supervisor]
            state_dir = "state"
            runtime_dir = "run"
            [turn]
            host = "127.0.0.1"
            [iroh]
            url = "http://127.0.0.1:3340"
            [tls]
            self_signed = true
            names = ["localhost"]
            \(extra)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func run(
        _ arguments: [String], environment: [String: String] = [:],
        _ body: @escaping @Sendable (Sidecar) async throws -> Void = { _ in }
    ) async -> Int32 {
        await Sidecar.run(
            name: "test", arguments: ["chatmail-test"] + arguments, environment: environment, handlingSignals: false,
            body)
    }

    @Test func theCommandLineIsOnlyTheConfigurationFile() {
        #expect(Sidecar.configurationPath(in: ["--config", "/a"]) == "/a")
        #expect(Sidecar.configurationPath(in: ["--config=/b"]) == "/b")
        #expect(Sidecar.configurationPath(in: []) == nil)
        #expect(Sidecar.configurationPath(in: ["--config"]) == nil)
        #expect(Sidecar.configurationPath(in: ["/a"]) == nil)
        #expect(Sidecar.configurationPath(in: ["--config", "/a", "--verbose"]) == nil)
    }

    @Test func exitStatuses() async throws {
        let path = try Self.configurationFile()
        #expect(await Self.run([]) == Sidecar.usageErrorStatus)
        #expect(await Self.run(["--config", "/nonexistent/supervisor.conf"]) == Sidecar.configurationErrorStatus)
        let broken = try Self.configurationFile("[turn]\nbogus = 1")
        #expect(await Self.run(["--config", broken]) == Sidecar.configurationErrorStatus)
        #expect(await Self.run(["--config", path]) == 0)
        #expect(await Self.run(["--config", path]) { _ in throw SidecarError.configuration("no") } == 78)
        #expect(await Self.run(["--config", path]) { _ in throw CocoaError(.fileNoSuchFile) } == 1)
        #expect(await Self.run(["--config", path]) { _ in throw SidecarError.environment("in use") } == 1)
        #expect(await Self.run(["--config", path], environment: ["CHATMAIL_CONTROL_FD": "x"]) == 1)
    }

    /// Only what an operator must fix waits for a reload; whatever the system may fix by itself is retried.
    @Test func exitStatusByKindOfError() throws {
        #expect(Sidecar.exitStatus(for: SidecarError.configuration("[turn] listen: \"x\" is not an IP address")) == 78)
        let broken = #expect(throws: ConfigurationErrors.self) {
            try Configuration.parse("[turn]\nbogus = 1", path: "/etc/chatmail/supervisor.conf")
        }
        #expect(broken.map { Sidecar.exitStatus(for: $0) } == 78)
        #expect(Sidecar.exitStatus(for: SidecarError.environment("cannot listen on 127.0.0.1:143")) == 1)
        #expect(Sidecar.exitStatus(for: IOError(errnoCode: EADDRINUSE, reason: "bind")) == 1)
        #expect(Sidecar.exitStatus(for: CancellationError()) == 1)
    }

    @Test func standaloneHasNoSupervisor() async throws {
        let path = try Self.configurationFile()
        let status = await Self.run(["--config", path]) { sidecar in
            #expect(!sidecar.isSupervised)
            #expect(sidecar.configuration.path == path)
            try await sidecar.ready()
            #expect(await sidecar.discovery() == Discovery())
        }
        #expect(status == 0)
    }

    @Test func theTLSProviderUsesTheDevelopmentCertificate() async throws {
        let path = try Self.configurationFile()
        let status = await Self.run(["--config", path]) { sidecar in
            let provider = try sidecar.tlsProvider(alpn: ["http/1.1"])
            #expect(provider.context.names.first?.contains("localhost") == true)
            sidecar.deliver(.reload)  // re-reads the same certificate: still usable
            _ = try provider.makeHandler()
        }
        #expect(status == 0)
    }

    @Test func supervisedHelloReadyEventsAndShutdownOnEOF() async throws {
        let path = try Self.configurationFile()
        var fds: [CInt] = [-1, -1]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let supervisor = FakeSupervisor(fd: fds[0])
        let conversation = Task.detached { try supervisor.converse() }
        let events = Mutex<[ControlEvent]>([])
        let status = await Self.run(["--config", path], environment: ["CHATMAIL_CONTROL_FD": "\(fds[1])"]) {
            sidecar in
            #expect(sidecar.isSupervised)
            try await sidecar.ready()
            #expect(await sidecar.discovery() == Discovery(turn: "h:1:2:p", irohRelay: "https://r"))
            for await event in sidecar.events { events.withLock { $0.append(event) } }
        }
        #expect(status == 0)
        #expect(events.withLock { $0 } == [.turnSecrets(["current", "previous"]), .reload])
        let lines = try await conversation.value
        #expect(lines.count == 3)
        #expect(lines[0].contains("\"type\":\"hello\"") && lines[0].contains("\"name\":\"test\""))
        #expect(lines[1].contains("\"type\":\"ready\""))
        #expect(lines[2].contains("\"type\":\"discovery\""))
    }
}

/// The supervisor's end of a child's control channel: answers hello, ready and discovery,
/// pushes secrets and a reload, then closes. Returns the lines the child sent.
struct FakeSupervisor: Sendable {
    let fd: CInt

    func converse() throws -> [String] {
        defer { close(fd) }
        var received: [String] = []
        var buffer: [UInt8] = []
        while received.count < 3 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            buffer += chunk[..<count]
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                received.append(line)
                let id = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let number = id?["id"] as? Int ?? 0
                var answer = "{\"id\":\(number),\"ok\":true}\n"
                if line.contains("\"discovery\"") {
                    answer =
                        "{\"id\":\(number),\"ok\":true,\"discovery\":{\"turn\":\"h:1:2:p\",\"iroh_relay\":\"https://r\"}}\n"
                }
                if line.contains("\"hello\"") {
                    answer += "{\"type\":\"turn-secrets\",\"secrets\":[\"current\",\"previous\"]}\n"
                }
                if line.contains("\"discovery\"") { answer += "{\"type\":\"reload\"}\n" }
                _ = answer.utf8.withContiguousStorageIfAvailable { write(fd, $0.baseAddress, $0.count) }
            }
        }
        return received
    }
}
