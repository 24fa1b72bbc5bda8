/// Sections of an RFC 5322 message as IMAP FETCH returns them.
public enum MessageParts {
    /// The index just past the blank line ending the header (the message's end if there is none).
    public static func headerEnd(_ message: [UInt8]) -> Int {
        var index = 0
        while index < message.count {
            guard let lf = message[index...].firstIndex(of: UInt8(ascii: "\n")) else { return message.count }
            let lineLength = lf - index
            if lineLength == 0 || (lineLength == 1 && message[index] == UInt8(ascii: "\r")) { return lf + 1 }
            index = lf + 1
        }
        return message.count
    }

    public static func header(_ message: [UInt8]) -> [UInt8] { Array(message[0..<headerEnd(message)]) }

    public static func text(_ message: [UInt8]) -> [UInt8] { Array(message[headerEnd(message)...]) }

    /// The header fields named (or, with `excluding`, not named) in `names`, as written, with
    /// their continuation lines, followed by a blank line.
    public static func headerFields(_ message: [UInt8], names: [String], excluding: Bool = false) -> [UInt8] {
        let wanted = Set(names.map { $0.lowercased() })
        let end = headerEnd(message)
        var out: [UInt8] = []
        var including = false
        var index = 0
        while index < end {
            let lf = message[index..<end].firstIndex(of: UInt8(ascii: "\n"))
            var line = message[index..<(lf ?? end)]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty { break }
            if line.first != UInt8(ascii: " ") && line.first != UInt8(ascii: "\t") {
                let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
                    .trimmingSuffixSpaces().lowercased()
                including = wanted.contains(name) != excluding
            }
            if including {
                out.append(contentsOf: line)
                out.append(contentsOf: [13, 10])
            }
            index = (lf ?? end) + 1
        }
        out.append(contentsOf: [13, 10])
        return out
    }
}

extension String {
    func trimmingSuffixSpaces() -> String {
        var result = Substring(self)
        while result.last == " " || result.last == "\t" { result.removeLast() }
        return String(result)
    }
}

/// IMAP's date-time format, `"23-Nov-2026 12:16:18 +0000"`, in UTC.
public enum IMAPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func format(_ secondsSince1970: Int64) -> String {
        let days = secondsSince1970 >= 0 ? secondsSince1970 / 86400 : (secondsSince1970 - 86399) / 86400
        let secondsOfDay = secondsSince1970 - days * 86400
        // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let dayText = day < 10 ? " \(day)" : "\(day)"
        return "\(dayText)-\(months[Int(month - 1)])-\(year) \(two(secondsOfDay / 3600)):"
            + "\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60)) +0000"
    }
}
