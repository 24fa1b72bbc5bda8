import ChatmailControl
import ChatmailMetrics
import Testing

@Suite struct ControlCodecTests {
    static let commands: [ControlCommand] = [
        .hello(name: "turn", pid: 4242), .ready, .discovery(account: nil), .discovery(account: "a@example.org"),
        .status, .start(name: "iroh", wait: true),
        .stop(name: "imap", wait: false), .restart(name: "turn", wait: true), .enable(name: "iroh"),
        .disable(name: "shadowsocks"), .reload, .rotateTURNSecret, .shadowsocksKey(method: "aes-256-gcm"),
        .metrics(scrape: 3, samples: []),
        .metrics(
            scrape: 4,
            samples: [
                Metric("x_total", .counter, help: "X \"q\".", labels: [("dir", "in"), ("k", "a\nb")], value: 7),
                Metric("y", .gauge, help: "", value: 0.5),
            ]),
    ]

    @Test(arguments: commands)
    func requestsRoundTrip(command: ControlCommand) throws {
        let request = ControlRequest(id: 17, command: command)
        let line = ControlCodec.encode(request)
        #expect(!line.contains(UInt8(ascii: "\n")))
        #expect(try ControlCodec.decodeRequest(line) == request)
    }

    @Test func requestWireFormatIsWhatSocatUsersType() throws {
        #expect(
            String(
                decoding: ControlCodec.encode(ControlRequest(id: 1, command: .restart(name: "turn", wait: true))),
                as: UTF8.self)
                == #"{"id":1,"name":"turn","type":"restart","wait":true}"#)
        let typed = try ControlCodec.decodeRequest(Array(#"{"type": "status", "id": 3}"#.utf8))
        #expect(typed == ControlRequest(id: 3, command: .status))
    }

    @Test(arguments: [
        ("", "not a JSON object"), ("[1]", "not a JSON object"), (#"{"type":"status"}"#, "missing integer \"id\""),
        (#"{"id":1}"#, "missing \"type\""), (#"{"id":1,"type":"fly"}"#, "unknown request type \"fly\""),
        (#"{"id":1,"type":"restart"}"#, "restart needs a \"name\""),
        (#"{"id":1,"type":"hello","name":"x"}"#, "hello needs a \"pid\""),
        (#"{"id":1,"type":"hello","name":"x","pid":99999999999}"#, "hello needs a \"pid\""),
        (#"{"id":1,"type":"shadowsocks-key"}"#, "shadowsocks-key needs a \"method\""),
        (#"{"id":1,"type":"metrics","scrape":1}"#, "metrics needs \"scrape\" and \"samples\""),
        (
            #"{"id":1,"type":"metrics","scrape":1,"samples":[{"name":"a b","type":"gauge","help":"","value":1,"labels":[]}]}"#,
            "malformed metric sample"
        ),
        (
            #"{"id":1,"type":"metrics","scrape":1,"samples":[{"name":"a","type":"gauge","help":"","value":1,"labels":[["a:b","v"]]}]}"#,
            "malformed metric sample"
        ),
    ])
    func badRequestsSayWhy(line: String, reason: String) {
        #expect {
            try ControlCodec.decodeRequest(Array(line.utf8))
        } throws: { error in
            (error as? ControlCodec.DecodingError)?.description == reason
        }
    }

    @Test func responsesAndEventsRoundTrip() throws {
        let status = SupervisorStatus(sidecars: [
            SidecarStatus(
                name: "turn", state: "ready", enabled: true, pid: 12, uptime: 3.5, restarts: 2,
                lastExit: "signal 9 (KILL)", listen: ["127.0.0.1:3478"], crashLooping: false, message: nil)
        ])
        let response = ControlResponse(
            id: 9, status: status, discovery: Discovery(turn: "h:1:2:p", irohRelay: "http://r", turns: "h:3:2:p"))
        #expect(try ControlCodec.decodeInbound(ControlCodec.encode(response)) == .response(response))
        let text = String(decoding: ControlCodec.encode(response), as: UTF8.self)
        #expect(text.contains(#""last_exit":"signal 9 (KILL)""#) && text.contains(#""iroh_relay":"http://r""#))
        #expect(text.contains(#""message":null"#), "status always has every key")
        let keyed = ControlResponse(id: 4, key: "c2VjcmV0")
        #expect(try ControlCodec.decodeInbound(ControlCodec.encode(keyed)) == .response(keyed))
        for event in [ControlEvent.turnSecrets(["a", "b"]), .reload, .collectMetrics(scrape: 12)] {
            #expect(try ControlCodec.decodeInbound(ControlCodec.encode(event)) == .event(event))
        }
        #expect(throws: ControlCodec.DecodingError.self) {
            try ControlCodec.decodeInbound(Array(#"{"type":"x"}"#.utf8))
        }
    }
}
