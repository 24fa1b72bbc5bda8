/// One IMAP command as the client sent it.
public struct Command: Equatable, Sendable {
    public var tag: String
    public var kind: Kind

    public init(tag: String, kind: Kind) {
        self.tag = tag
        self.kind = kind
    }

    public enum Kind: Equatable, Sendable {
        case capability
        case noop
        case logout
        case startTLS
        /// `ID NIL` or `ID ("key" "value" ...)`, flattened; nil values are NIL.
        case id([String?]?)
        case login(user: String, password: String)
        case compress(mechanism: String)
        case enable([String])
        case select(mailbox: String, readOnly: Bool)
        case create(mailbox: String)
        case delete(mailbox: String)
        case subscribe(mailbox: String)
        case unsubscribe(mailbox: String)
        case list(reference: String, pattern: String, subscribedOnly: Bool)
        case status(mailbox: String, items: [StatusItem])
        case check
        case close
        case unselect
        case expunge(uids: SequenceSet?)
        case fetch(SequenceSet, [FetchAttribute], byUID: Bool)
        case store(SequenceSet, StoreOperation, silent: Bool, flags: [String], byUID: Bool)
        case copy(SequenceSet, mailbox: String, byUID: Bool)
        case move(SequenceSet, mailbox: String, byUID: Bool)
        case search([SearchKey], byUID: Bool)
        case idle
        case getQuotaRoot(mailbox: String)
        case getQuota(root: String)
        case getMetadata(mailbox: String, entries: [String])
        case setMetadata(mailbox: String, entries: [MetadataEntry])
        /// `APPEND mailbox [(flags)] ["date-time"] literal`; the date as seconds since 1970.
        case append(mailbox: String, flags: [String], date: Int64?, message: [UInt8])
    }
}

public struct MetadataEntry: Equatable, Sendable {
    public var name: String
    /// Nil removes the entry.
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }
}

public enum StatusItem: String, Equatable, Sendable, CaseIterable {
    case messages = "MESSAGES"
    case recent = "RECENT"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
}

public enum StoreOperation: Equatable, Sendable {
    case add, remove, replace
}

/// The search keys offered: enough for clients that look for unseen or deleted mail.
public enum SearchKey: Equatable, Sendable {
    case all
    case seen, unseen, deleted, undeleted, flagged, unflagged, answered, unanswered
    case uid(SequenceSet)
    case sequence(SequenceSet)
}

public enum FetchAttribute: Equatable, Sendable, Hashable {
    case uid
    case flags
    case rfc822Size
    case internalDate
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    case body(section: Section, peek: Bool, partial: Partial?)
    case rfc822
    case rfc822Header
    case rfc822Text

    public enum Section: Equatable, Sendable, Hashable {
        case whole
        case header
        case text
        /// Field names as the client wrote them (they are echoed back).
        case headerFields([String])
        case headerFieldsNot([String])
    }

    public struct Partial: Equatable, Sendable, Hashable {
        public var offset: Int
        public var count: Int

        public init(offset: Int, count: Int) {
            self.offset = offset
            self.count = count
        }
    }
}

/// A message set: numbers, ranges and `*` (the largest number in use).
public struct SequenceSet: Equatable, Sendable {
    public enum Bound: Equatable, Sendable {
        case number(UInt32)
        case last
    }

    public struct Range: Equatable, Sendable {
        public var from: Bound
        public var to: Bound

        public init(_ from: Bound, _ to: Bound) {
            self.from = from
            self.to = to
        }
    }

    public var ranges: [Range]

    public init(_ ranges: [Range]) {
        self.ranges = ranges
    }

    /// The closed ranges this set covers when `*` stands for `last` (nil when nothing exists).
    public func resolved(last: UInt32?) -> [ClosedRange<UInt32>] {
        ranges.compactMap { range in
            func value(_ bound: Bound) -> UInt32? {
                switch bound {
                case .number(let n): n
                case .last: last
                }
            }
            guard let a = value(range.from), let b = value(range.to) else { return nil }
            return min(a, b)...max(a, b)
        }
    }

    /// The resolved ranges sorted and merged where they overlap or touch, so that a client
    /// repeating huge ranges costs no more than one.
    public func coalesced(last: UInt32?) -> [ClosedRange<UInt32>] {
        var merged: [ClosedRange<UInt32>] = []
        for range in resolved(last: last).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let previous = merged.last, UInt64(range.lowerBound) <= UInt64(previous.upperBound) + 1 {
                merged[merged.count - 1] = previous.lowerBound...max(previous.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }

    /// UIDs in the order given, as set text: runs of consecutive ascending numbers become `a:b`
    /// (`1:3,7,9:10`); the order is kept, as COPYUID pairs two such lists element by element.
    public static func text(_ numbers: [UInt32]) -> String {
        var parts: [String] = []
        var index = 0
        while index < numbers.count {
            var end = index
            while end + 1 < numbers.count, numbers[end] != .max, numbers[end + 1] == numbers[end] + 1 { end += 1 }
            parts.append(end == index ? "\(numbers[index])" : "\(numbers[index]):\(numbers[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// Whether `value` lies in the set.
    public func contains(_ value: UInt32, last: UInt32?) -> Bool {
        Self.contains(value, in: coalesced(last: last))
    }

    /// Binary search in coalesced ranges.
    public static func contains(_ value: UInt32, in ranges: [ClosedRange<UInt32>]) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound < value {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low < ranges.count && ranges[low].contains(value)
    }
}
