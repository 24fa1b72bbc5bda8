import Testing

@testable import ChatmailDoctor

@Suite struct IMAPProbeTests {
    @Test func metadataValuesAreReadFromQuotedStringsLiteralsAndAtoms() {
        let response = Array(
            ("* METADATA \"\" (/shared/vendor/deltachat/turn \"chat.example.org:3478:1796733004:pw+/=\" "
                + "/shared/vendor/deltachat/irohrelay {24}\r\nhttps://chat.example.org /shared/comment hello)\r\n").utf8
        )
        let values = MetadataResponse.values(response)
        #expect(values[IMAPProbe.turnEntry] == "chat.example.org:3478:1796733004:pw+/=")
        #expect(values[IMAPProbe.irohEntry] == "https://chat.example.org")
        #expect(values["/shared/comment"] == "hello")
        #expect(MetadataResponse.values(Array("* OK nothing\r\n".utf8)).isEmpty)
    }

    @Test func discoveryIsComparedWithWhatWasTested() {
        let values = [
            IMAPProbe.turnEntry: "chat.example.org:3478:1796733004:pw",
            IMAPProbe.irohEntry: "https://chat.example.org",
        ]
        let same = IMAPProbe.compare(
            values, with: .init(turn: "chat.example.org:3478", irohRelay: "https://chat.example.org"))
        #expect(same.map(\.1) == [.pass, .pass])
        let other = IMAPProbe.compare(
            values, with: .init(turn: "10.77.0.1:3478", irohRelay: "https://chat.example.org"))
        #expect(other[0].1 == .fail && other[0].2 == "clients get chat.example.org:3478, but 10.77.0.1:3478 was tested")
        let missing = IMAPProbe.compare([:], with: .init(turn: nil, irohRelay: "https://chat.example.org"))
        #expect(missing.count == 1 && missing[0].0 == "discovery iroh" && missing[0].1 == .fail)
        let off = IMAPProbe.compare(values, with: .init(turn: nil, irohRelay: nil))
        #expect(off.map(\.1) == [.warn, .warn])
    }

    @Test func theTURNPasswordIsNotShown() {
        let text = IMAPProbe.describe([IMAPProbe.turnEntry: "h:3478:1796733004:secretpassword"])
        #expect(text == "turn h:3478 (user 1796733004)")
    }
}
