import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether first logins may create accounts now. Creation is closed while the `nocreate` file
/// exists (an operator's switch, as chatmail relays' `/etc/chatmail-nocreate`) or while the
/// file system under the mail store has less than `minFreeBytes` available; existing accounts
/// log in either way. Checked on every creation attempt (two system calls).
public struct AccountCreationGate: Sendable, Equatable {
    public enum State: Equatable, Sendable, CustomStringConvertible {
        case open(freeBytes: Int64)
        case closedByFile(String)
        case lowDisk(freeBytes: Int64, minimum: Int64)

        public var isOpen: Bool {
            if case .open = self { return true }
            return false
        }

        public var description: String {
            switch self {
            case .open(let free): "open (\(Self.size(free)) free)"
            case .closedByFile(let path): "closed: \(path) exists"
            case .lowDisk(let free, let minimum):
                "closed: \(Self.size(free)) free under the mail store, below min_free_space \(Self.size(minimum))"
            }
        }

        static func size(_ bytes: Int64) -> String {
            for (unit, scale) in [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] as [(String, Int64)]
            where bytes >= scale {
                return String(format: "%.1f%@", Double(bytes) / Double(scale), unit)
            }
            return "\(bytes)B"
        }
    }

    public var noCreatePath: String
    /// A directory on the file system that holds the mail store.
    public var storeDirectory: String
    public var minFreeBytes: Int64

    public init(noCreatePath: String, storeDirectory: String, minFreeBytes: Int64) {
        self.noCreatePath = noCreatePath
        self.storeDirectory = storeDirectory
        self.minFreeBytes = minFreeBytes
    }

    public func state() -> State {
        if access(noCreatePath, F_OK) == 0 { return .closedByFile(noCreatePath) }
        // A file system we cannot ask about counts as full: creation waits, logins go on.
        let free = Self.availableBytes(storeDirectory) ?? 0
        return free < minFreeBytes ? .lowDisk(freeBytes: free, minimum: minFreeBytes) : .open(freeBytes: free)
    }

    /// Bytes available to an unprivileged user on the file system holding `path`.
    static func availableBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
