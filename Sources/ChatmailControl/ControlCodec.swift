import ChatmailMetrics
import Foundation

/// Encodes and decodes control lines (without the newline). Keys are snake_case on the wire.
public enum ControlCodec {
    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    private static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    private static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    private static func json(_ object: [String: Any]) -> [UInt8] {
        // Only strings, numbers, booleans and arrays of strings go in here, so this cannot fail.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Array(data)
    }

    public static func encode(_ request: ControlRequest) -> [UInt8] {
        var object: [String: Any] = ["id": request.id, "type": request.command.type]
        switch request.command {
        case .hello(let name, let pid):
            object["name"] = name
            object["pid"] = Int(pid)
        case .start(let name, let wait), .stop(let name, let wait), .restart(let name, let wait):
            object["name"] = name
            object["wait"] = wait
        case .enable(let name), .disable(let name):
            object["name"] = name
        case .shadowsocksKey(let method):
            object["method"] = method
        case .discovery(let account):
            if let account { object["account"] = account }
        case .metrics(let scrape, let samples):
            object["scrape"] = scrape
            object["samples"] = samples.map { sample -> [String: Any] in
                [
                    "name": sample.name, "type": sample.kind.rawValue, "help": sample.help, "value": sample.value,
                    "labels": sample.labels.map { [$0.name, $0.value] },
                ]
            }
        case .ready, .status, .reload, .rotateTURNSecret:
            break
        }
        return json(object)
    }

    public static func encode(_ response: ControlResponse) -> [UInt8] {
        Array(try! encoder().encode(response))
    }

    public static func encode(_ event: ControlEvent) -> [UInt8] {
        switch event {
        case .turnSecrets(let secrets): json(["type": "turn-secrets", "secrets": secrets])
        case .reload: json(["type": "reload"])
        case .collectMetrics(let scrape): json(["type": "collect-metrics", "scrape": scrape])
        }
    }

    private static func object(_ line: some Collection<UInt8>) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw DecodingError(description: "not a JSON object")
        }
        return object
    }

    public static func decodeRequest(_ line: some Collection<UInt8>) throws -> ControlRequest {
        let object = try object(line)
        guard let id = object["id"] as? Int else { throw DecodingError(description: "missing integer \"id\"") }
        guard let type = object["type"] as? String else { throw DecodingError(description: "missing \"type\"") }
        func name() throws -> String {
            guard let name = object["name"] as? String, !name.isEmpty else {
                throw DecodingError(description: "\(type) needs a \"name\"")
            }
            return name
        }
        let wait = object["wait"] as? Bool ?? false
        let command: ControlCommand
        switch type {
        case "hello":
            guard let pid = object["pid"] as? Int, let pid32 = Int32(exactly: pid) else {
                throw DecodingError(description: "hello needs a \"pid\"")
            }
            command = .hello(name: try name(), pid: pid32)
        case "ready": command = .ready
        case "discovery": command = .discovery(account: object["account"] as? String)
        case "status": command = .status
        case "start": command = .start(name: try name(), wait: wait)
        case "stop": command = .stop(name: try name(), wait: wait)
        case "restart": command = .restart(name: try name(), wait: wait)
        case "enable": command = .enable(name: try name())
        case "disable": command = .disable(name: try name())
        case "reload": command = .reload
        case "rotate-turn-secret": command = .rotateTURNSecret
        case "shadowsocks-key":
            guard let method = object["method"] as? String, !method.isEmpty else {
                throw DecodingError(description: "shadowsocks-key needs a \"method\"")
            }
            command = .shadowsocksKey(method: method)
        case "metrics":
            guard let scrape = object["scrape"] as? Int, let samples = object["samples"] as? [[String: Any]] else {
                throw DecodingError(description: "metrics needs \"scrape\" and \"samples\"")
            }
            command = .metrics(scrape: scrape, samples: try samples.map(metric))
        default: throw DecodingError(description: "unknown request type \"\(type)\"")
        }
        return ControlRequest(id: id, command: command)
    }

    /// What a client reads: an answer to one of its requests, or a push.
    public enum Inbound: Sendable, Equatable {
        case response(ControlResponse)
        case event(ControlEvent)
    }

    public static func decodeInbound(_ line: some Collection<UInt8>) throws -> Inbound {
        let object = try object(line)
        if object["id"] != nil {
            do {
                return .response(try decoder().decode(ControlResponse.self, from: Data(line)))
            } catch {
                throw DecodingError(description: "malformed response: \(error)")
            }
        }
        switch object["type"] as? String {
        case "turn-secrets":
            guard let secrets = object["secrets"] as? [String] else {
                throw DecodingError(description: "turn-secrets needs \"secrets\"")
            }
            return .event(.turnSecrets(secrets))
        case "reload": return .event(.reload)
        case "collect-metrics":
            guard let scrape = object["scrape"] as? Int else {
                throw DecodingError(description: "collect-metrics needs \"scrape\"")
            }
            return .event(.collectMetrics(scrape: scrape))
        default: throw DecodingError(description: "unknown event")
        }
    }

    /// One sample of a `metrics` request; names are checked, so a child cannot break the exposition text.
    private static func metric(_ object: [String: Any]) throws -> Metric {
        guard let name = object["name"] as? String, PrometheusText.isValidName(name),
            let kind = (object["type"] as? String).flatMap(Metric.Kind.init(rawValue:)),
            let help = object["help"] as? String, let value = (object["value"] as? NSNumber)?.doubleValue,
            let pairs = object["labels"] as? [[String]],
            pairs.allSatisfy({ $0.count == 2 && PrometheusText.isValidName($0[0], label: true) })
        else { throw DecodingError(description: "malformed metric sample") }
        return Metric(name, kind, help: help, labels: pairs.map { ($0[0], $0[1]) }, value: value)
    }
}
