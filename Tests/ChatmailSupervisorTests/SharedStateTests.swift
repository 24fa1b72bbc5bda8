import ChatmailConfig
import ChatmailControl
import ChatmailState
import ChatmailSystemd
import ChatmailTLS
import Foundation
import Logging
import NIOPosix
import ShadowsocksCore
import Testing

@testable import ChatmailSupervisor

/// What the children share is made by the supervisor before any child starts; a child only reads.
@Suite struct SharedStateTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shared-\(UUID())").path

    func configuration(_ extra: String = "") throws -> Configuration {
        try Configuration.parse(
            """
            [supervisor]
            state_dir = "state"
            [turn]
            host = "t"
            [iroh]
            url = "http://r"
            [tls]
            self_signed = true
            names = ["localhost"]
            \(extra)
            """, path: directory + "/supervisor.conf")
    }

    @Test func theCertificateAndTheShadowsocksKeyAreMadeOnceAndThenOnlyRead() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try configuration()
        let stateDir = configuration.supervisor.stateDir
        #expect(throws: TLSError.self, "a supervised child does not make it") {
            try TLSIdentity.configured(by: configuration, creating: false)
        }
        #expect(!FileManager.default.fileExists(atPath: stateDir + "/tls/dev-cert.pem"))

        let store = try StateStore(directory: stateDir)
        SharedState.prepare(configuration, store: store, logger: Logger(label: "test"))
        let identities = try TLSIdentity.configured(by: configuration, creating: false)
        #expect(identities == [DevelopmentCertificate.identity(in: stateDir + "/tls")])
        _ = try TLSContext(server: identities)
        let method = try #require(ShadowsocksMethod(rawValue: configuration.shadowsocks.method))
        let key = try #require(try StateReader(directory: stateDir).setting(method.stateKey))
        let certificate = try Data(contentsOf: URL(fileURLWithPath: identities[0].certificatePath))

        SharedState.prepare(configuration, store: store, logger: Logger(label: "test"))  // a reload
        #expect(try StateReader(directory: stateDir).setting(method.stateKey) == key, "kept")
        #expect(try Data(contentsOf: URL(fileURLWithPath: identities[0].certificatePath)) == certificate, "kept")
    }

    @Test func aConfiguredShadowsocksKeyMakesNone() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try configuration("[shadowsocks]\nkey = \"mine\"\nmethod = \"aes-256-gcm\"")
        let store = try StateStore(directory: configuration.supervisor.stateDir)
        SharedState.prepare(configuration, store: store, logger: Logger(label: "test"))
        #expect(
            try StateReader(directory: configuration.supervisor.stateDir).setting("shadowsocks.key.aes-256-gcm") == nil)
    }

    @Test func theStateReaderNeverCreatesTheDatabase() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reader = StateReader(directory: directory + "/none")
        #expect(try reader.setting("anything") == nil)
        #expect(!FileManager.default.fileExists(atPath: directory + "/none"))
    }

    @Test func theSupervisorHandsOutTheKeyItMade() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try configuration()
        let store = try StateStore(directory: configuration.supervisor.stateDir)
        let supervisor = try Supervisor(
            configuration: configuration, store: store, notifier: SystemdNotifier(),
            logger: Logger(label: "test"), group: MultiThreadedEventLoopGroup.singleton,
            programDirectory: "/nonexistent")
        let method = ShadowsocksMethod.aes128GCM
        let answer = await supervisor.handle(
            ControlRequest(id: 3, command: .shadowsocksKey(method: method.rawValue)), from: .admin)
        #expect(answer.ok && answer.id == 3)
        let key = try #require(answer.key)
        #expect(ShadowsocksCredential(method: method, keyText: key) != nil)
        #expect(try StateReader(directory: configuration.supervisor.stateDir).setting(method.stateKey) == key)
        let again = await supervisor.handle(
            ControlRequest(id: 4, command: .shadowsocksKey(method: method.rawValue)), from: .admin)
        #expect(again.key == key)
        let unknown = await supervisor.handle(
            ControlRequest(id: 5, command: .shadowsocksKey(method: "rot13")), from: .admin)
        #expect(!unknown.ok && unknown.error?.contains("rot13") == true)
    }
}
