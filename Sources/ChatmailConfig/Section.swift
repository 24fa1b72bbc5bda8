import TOMLKit

/// One `[section]` being read: typed accessors with defaults, and a record of the keys used so
/// that `finish()` can report the unknown ones.
struct Section {
    let name: String
    let table: TOMLTable?
    let reader: ConfigurationReader
    private let used = Box()

    private final class Box { var keys: Set<String> = [] }

    init(name: String, table: TOMLTable?, reader: ConfigurationReader) {
        self.name = name
        self.table = table
        self.reader = reader
    }

    func fail(_ key: String, _ message: String) { reader.fail(name, key, message) }

    private func value(_ key: String) -> (any TOMLValueConvertible)? {
        used.keys.insert(key)
        return table?[key]
    }

    func optionalString(_ key: String) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.string else {
            fail(key, "expected a string, found \(value.type)")
            return nil
        }
        return string
    }

    func string(_ key: String, default fallback: String) -> String { optionalString(key) ?? fallback }

    func bool(_ key: String, default fallback: Bool) -> Bool {
        guard let value = value(key) else { return fallback }
        guard let bool = value.bool else {
            fail(key, "expected true or false, found \(value.type)")
            return fallback
        }
        return bool
    }

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) -> Int {
        guard let value = value(key) else { return fallback }
        guard let int = value.int, range.contains(int) else {
            fail(key, "expected an integer from \(range.lowerBound) to \(range.upperBound)")
            return fallback
        }
        return int
    }

    /// A positive number of seconds, integer or fractional.
    func seconds(_ key: String, default fallback: Double) -> Double {
        guard let value = value(key) else { return fallback }
        guard let seconds = value.double ?? value.int.map(Double.init), seconds > 0, seconds <= 86400 * 365 else {
            fail(key, "expected a positive number of seconds")
            return fallback
        }
        return seconds
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) -> T
    where T.RawValue == String {
        guard let text = optionalString(key) else { return fallback }
        guard let choice = T(rawValue: text) else {
            fail(key, "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return fallback
        }
        return choice
    }

    func address(_ key: String, default fallback: String) -> ListenAddress {
        let text = string(key, default: fallback)
        guard let address = ListenAddress(parsing: text) else {
            fail(key, "expected \"host:port\" (IPv6 as \"[::1]:port\"), found \"\(text)\"")
            return ListenAddress(parsing: fallback)!
        }
        return address
    }

    func stringList(_ key: String, default fallback: [String]) -> [String] {
        guard let value = value(key) else { return fallback }
        guard let array = value.array, let strings = Optional(array.compactMap(\.string)), strings.count == array.count
        else {
            fail(key, "expected a list of strings")
            return fallback
        }
        return strings
    }

    /// A list of integers, each in `range`.
    func intList(_ key: String, default fallback: [Int], range: ClosedRange<Int>) -> [Int] {
        guard let value = value(key) else { return fallback }
        guard let array = value.array, array.allSatisfy({ $0.int.map(range.contains) == true }) else {
            fail(key, "expected a list of integers from \(range.lowerBound) to \(range.upperBound)")
            return fallback
        }
        return array.compactMap(\.int)
    }

    /// A string or a list of strings; empty when absent.
    func stringOrList(_ key: String) -> [String] {
        guard let value = value(key) else { return [] }
        if let single = value.string { return [single] }
        guard let array = value.array, array.allSatisfy({ $0.string != nil }) else {
            fail(key, "expected a string or a list of strings")
            return []
        }
        return array.compactMap(\.string)
    }

    /// `enabled`, `command` (a program path, or a list of the program and its arguments) and `stop_timeout`.
    func child(stopTimeout: Double, listen: [ListenAddress]) -> ChildSettings {
        let enabled = bool("enabled", default: true)
        var command: [String]?
        if let value = value("command") {
            if let single = value.string {
                command = [single]
            } else if let array = value.array, array.allSatisfy({ $0.string != nil }) {
                command = array.compactMap(\.string)
            } else {
                fail("command", "expected a program path or a list of strings")
            }
            if let program = command?.first {
                if program.isEmpty { fail("command", "must not be empty") }
                command![0] = program.contains("/") ? reader.absolute(program) : program
            } else if command != nil {
                fail("command", "must not be empty")
            }
        }
        return ChildSettings(
            enabled: enabled, command: command, stopTimeout: seconds("stop_timeout", default: stopTimeout),
            listen: listen,
            maxConnectionsPerSource: int(
                "max_connections_per_source", default: ChildSettings.defaultMaxConnectionsPerSource,
                range: 0...10_000_000))
    }

    /// Reports every key of the section that nothing read.
    func finish() {
        for key in table?.keys ?? [] where !used.keys.contains(key) {
            fail(key, "unknown key")
        }
    }
}
