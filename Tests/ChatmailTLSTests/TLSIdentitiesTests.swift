import ChatmailConfig
import ChatmailTLS
import Foundation
import Testing

@Suite struct TLSIdentitiesTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID())").path

    func configuration(_ tls: String) throws -> Configuration {
        try Configuration.parse(
            "[supervisor]\nstate_dir = \"state\"\n[turn]\nhost = \"t\"\n[iroh]\nurl = \"http://r\"\n[tls]\n" + tls,
            path: directory + "/supervisor.conf")
    }

    @Test func configuredPairsInOrder() throws {
        let identities = try TLSIdentity.configured(
            by: configuration("certificate = [\"/a.pem\", \"b.pem\"]\nkey = [\"/a.key\", \"b.key\"]"))
        #expect(
            identities == [
                TLSIdentity(certificatePath: "/a.pem", keyPath: "/a.key"),
                TLSIdentity(certificatePath: directory + "/b.pem", keyPath: directory + "/b.key"),
            ])
    }

    @Test func selfSignedIsMadeInStateDirOnce() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try configuration("self_signed = true\nnames = [\"localhost\", \"127.0.0.1\"]")
        let identities = try TLSIdentity.configured(by: configuration)
        #expect(identities.map(\.certificatePath) == [directory + "/state/tls/dev-cert.pem"])
        let context = try TLSContext(server: identities)
        #expect(context.names == [["localhost"]])
        #expect(try TLSIdentity.configured(by: configuration) == identities)
    }

    @Test func neitherCertificateNorSelfSignedIsAnError() throws {
        #expect {
            try TLSIdentity.configured(by: configuration(""))
        } throws: { error in
            "\(error)".contains("set [tls] certificate and key")
        }
    }
}
