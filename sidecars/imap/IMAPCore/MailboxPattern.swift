/// An RFC 3501 LIST pattern: `*` matches anything, `%` anything but the hierarchy delimiter `/`.
///
/// Matching is a dynamic program over the name's positions, one pass per pattern element, so it
/// costs at most O(name × pattern) whatever the pattern holds (a backtracking matcher is
/// exponential in the number of wildcards). Runs of wildcards are collapsed first: a run holding
/// a `*` is one `*`, a run of `%` is one `%`.
public struct MailboxPattern: Sendable, Equatable {
    /// Longer reference + pattern texts are refused before any matching.
    public static let maxLength = 1024

    enum Element: Equatable, Sendable {
        case byte(UInt8)
        /// `*`
        case any
        /// `%`
        case anyButDelimiter
    }

    let elements: [Element]
    /// How many bytes a name needs at least (the literal bytes).
    let literalCount: Int

    public init(_ pattern: some Collection<UInt8>) {
        var elements: [Element] = []
        for byte in pattern {
            let element: Element =
                switch byte {
                case UInt8(ascii: "*"): .any
                case UInt8(ascii: "%"): .anyButDelimiter
                default: .byte(byte)
                }
            switch (elements.last, element) {
            case (.any?, .any), (.any?, .anyButDelimiter), (.anyButDelimiter?, .anyButDelimiter): continue
            case (.anyButDelimiter?, .any): elements[elements.count - 1] = .any
            default: elements.append(element)
            }
        }
        self.elements = elements
        literalCount = elements.count { if case .byte = $0 { true } else { false } }
    }

    public init(_ pattern: String) { self.init(pattern.utf8) }

    public func matches(_ name: String) -> Bool { matches(Array(name.utf8)) }

    public func matches(_ name: [UInt8]) -> Bool {
        guard name.count >= literalCount else { return false }
        let delimiter = UInt8(ascii: "/")
        // reachable[j]: the elements so far can match name[0..<j].
        var reachable = [Bool](repeating: false, count: name.count + 1)
        reachable[0] = true
        var next = reachable
        for element in elements {
            var any = false
            switch element {
            case .any:
                // Any position at or after a reachable one.
                for j in 0...name.count {
                    any = any || reachable[j]
                    next[j] = any
                }
            case .anyButDelimiter:
                // A reachable position extended over bytes other than the delimiter.
                var run = false
                for j in 0...name.count {
                    run = reachable[j] || (run && name[j - 1] != delimiter)
                    next[j] = run
                    any = any || run
                }
            case .byte(let wanted):
                next[0] = false
                for j in 0..<name.count {
                    let hit = reachable[j] && Self.equal(name[j], wanted)
                    next[j + 1] = hit
                    any = any || hit
                }
            }
            guard any else { return false }
            swap(&reachable, &next)
        }
        return reachable[name.count]
    }

    /// Bytes equal, or the same ASCII letter in another case.
    static func equal(_ byte: UInt8, _ wanted: UInt8) -> Bool {
        byte == wanted
            || (byte | 0x20 == wanted | 0x20 && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20))
    }
}
