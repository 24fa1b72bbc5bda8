/// Which addresses and passwords may create an account on first login (chatmail style).
public struct AccountRules: Sendable, Equatable {
    public var domain: String
    public var localpartLength: ClosedRange<Int>
    public var passwordMinLength: Int

    public init(domain: String, localpartLength: ClosedRange<Int> = 9...9, passwordMinLength: Int = 9) {
        self.domain = domain.lowercased()
        self.localpartLength = localpartLength
        self.passwordMinLength = passwordMinLength
    }

    /// The address lowercased, if it is `localpart@domain` with an allowed localpart: `a-z 0-9 . _ -`
    /// as an RFC 5322 dot-atom (no dot first or last, no two dots in a row).
    public func normalizedAddress(_ address: String) -> String? {
        let lower = address.lowercased()
        guard let at = lower.lastIndex(of: "@"), lower[lower.index(after: at)...] == domain else { return nil }
        let localpart = lower[..<at].utf8
        guard localpart.allSatisfy(Self.isLocalpartByte), localpart.first.map({ $0 != Self.dot }) ?? false,
            localpart.last != Self.dot,
            !zip(localpart, localpart.dropFirst()).contains(where: { $0 == Self.dot && $1 == Self.dot })
        else { return nil }
        return lower
    }

    private static let dot = UInt8(ascii: ".")

    /// Whether a login with these credentials may create the account.
    public func allowsCreation(address: String, password: String) -> Bool {
        guard let normalized = normalizedAddress(address), let at = normalized.lastIndex(of: "@") else { return false }
        return localpartLength.contains(normalized.distance(from: normalized.startIndex, to: at))
            && password.count >= passwordMinLength
    }

    static func isLocalpartByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
}
