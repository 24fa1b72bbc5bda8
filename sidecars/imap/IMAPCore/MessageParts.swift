/// Sections of an RFC 5322 message as IMAP FETCH returns them.
public enum MessageParts {
    /// The index just past the blank line ending the header (the message's end if there is none).
    public static func headerEnd(_ message: [UInt8]) -> Int { MessageHeader(message).end }

    public static func header(_ message: [UInt8]) -> [UInt8] { MessageHeader(message).header(message) }

    public static func text(_ message: [UInt8]) -> [UInt8] { MessageHeader(message).text(message) }

    /// The header fields named (or, with `excluding`, not named) in `names`, as written, with
    /// their continuation lines, followed by a blank line.
    public static func headerFields(_ message: [UInt8], names: [String], excluding: Bool = false) -> [UInt8] {
        MessageHeader(message).fields(of: message, names: names, excluding: excluding)
    }
}

/// A message's header found in one pass: where it ends and where each field lies. A FETCH builds
/// it once per message and answers every HEADER, TEXT and HEADER.FIELDS item from it; the pass
/// stops at the blank line, so the body is never scanned.
public struct MessageHeader: Sendable {
    struct Field: Sendable {
        /// Lowercased, trailing blanks removed.
        var name: String
        /// The field's lines, continuation lines included, up to and including the last line end.
        var range: Range<Int>
    }

    /// Just past the blank line ending the header (the message's end if there is none).
    public let end: Int
    let fields: [Field]

    public init(_ message: [UInt8]) {
        var fields: [Field] = []
        var index = 0
        var end = message.count
        while index < message.count {
            let lf = message[index...].firstIndex(of: UInt8(ascii: "\n"))
            let lineEnd = lf.map { $0 + 1 } ?? message.count
            var contentEnd = lf ?? message.count
            if contentEnd > index && message[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            if contentEnd == index {
                // A blank line (or a lone CR at the very end) ends the header.
                end = lineEnd
                break
            }
            let first = message[index]
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                // A continuation line; one before any field belongs to none and is never returned.
                if !fields.isEmpty {
                    fields[fields.count - 1].range = fields[fields.count - 1].range.lowerBound..<lineEnd
                }
            } else {
                let line = message[index..<contentEnd]
                let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? contentEnd
                let name = String(decoding: message[index..<colon], as: UTF8.self).trimmingSuffixSpaces().lowercased()
                fields.append(Field(name: name, range: index..<lineEnd))
            }
            index = lineEnd
        }
        self.end = end
        self.fields = fields
    }

    public func header(_ message: [UInt8]) -> [UInt8] { Array(message[0..<end]) }

    public func text(_ message: [UInt8]) -> [UInt8] { Array(message[end...]) }

    /// The fields named (or, with `excluding`, not named) in `names`, as written, each line ending
    /// in CRLF, followed by a blank line.
    public func fields(of message: [UInt8], names: [String], excluding: Bool = false) -> [UInt8] {
        let wanted = Set(names.map { $0.lowercased() })
        var out: [UInt8] = []
        for field in fields where wanted.contains(field.name) != excluding {
            var index = field.range.lowerBound
            while index < field.range.upperBound {
                let lf = message[index..<field.range.upperBound].firstIndex(of: UInt8(ascii: "\n"))
                var line = message[index..<(lf ?? field.range.upperBound)]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                out.append(contentsOf: line)
                out.append(contentsOf: [13, 10])
                index = (lf ?? field.range.upperBound) + 1
            }
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

    /// Seconds since 1970 for `dd-Mon-yyyy hh:mm:ss +zzzz` (the day may be space-padded or one
    /// digit); nil when it is not that.
    public static func parse(_ text: String) -> Int64? {
        let fields = text.drop { $0 == " " }.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3 else { return nil }
        let date = fields[0].split(separator: "-", omittingEmptySubsequences: false)
        let time = fields[1].split(separator: ":", omittingEmptySubsequences: false)
        let zone = fields[2]
        guard date.count == 3, time.count == 3, zone.count == 5, let sign = zone.first, sign == "+" || sign == "-",
            (1...2).contains(date[0].count), date[2].count == 4, time.allSatisfy({ $0.count == 2 }),
            let day = Int64(date[0]), let year = Int64(date[2]),
            let monthIndex = months.firstIndex(where: { $0.lowercased() == date[1].lowercased() }),
            let hour = Int64(time[0]), let minute = Int64(time[1]), let second = Int64(time[2]),
            let zoneHours = Int64(zone.dropFirst().prefix(2)), let zoneMinutes = Int64(zone.suffix(2)),
            (1...31).contains(day), hour < 24, minute < 60, second < 61, zoneMinutes < 60,
            date[0].allSatisfy(\.isASCII), zone.dropFirst().allSatisfy(\.isNumber)
        else { return nil }
        // Days since 1970-01-01 from the civil date (the inverse of `format`'s).
        let month = Int64(monthIndex + 1)
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let offset = (zoneHours * 3600 + zoneMinutes * 60) * (sign == "-" ? -1 : 1)
        return days * 86400 + hour * 3600 + minute * 60 + second - offset
    }

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
