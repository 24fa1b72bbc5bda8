import ShadowsocksCore

#if canImport(Glibc)
    import Glibc
#endif

/// The salt history's file (`SaltLog` format), owned by this process: read once at start, then appended to and
/// rewritten whole. A rewrite goes to a temporary file that is synced and renamed over the old one, so a crash
/// leaves the old or the new file, never a mix; appends are synced too, so what was appended survives a power
/// loss. Blocking: call it off the event loops.
final class SaltFile {
    enum FileError: Error, CustomStringConvertible {
        case system(String, Int32)
        var description: String {
            switch self {
            case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
            }
        }
    }

    let path: String
    let saltLength: Int
    /// Salts in the file now (after the last rewrite or append).
    private(set) var records = 0
    private var descriptor: Int32 = -1

    init(path: String, saltLength: Int) {
        self.path = path
        self.saltLength = saltLength
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// What the file holds: nil when there is none; throws when it cannot be read or is not a salt log of this
    /// salt length (the caller then treats its history as incomplete).
    func load() throws(FileError) -> SaltLog.Contents? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .system("open \(path)", errno)
        }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system("read \(path)", errno)
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        guard let contents = SaltLog.decode(bytes, saltLength: saltLength) else {
            throw .system("\(path) is not a salt history of \(saltLength)-byte salts", EINVAL)
        }
        return contents
    }

    /// Replaces the file with `salts` (older first) and the clean-stop flag.
    func rewrite(_ salts: [[UInt8]], cleanStop: Bool) throws(FileError) {
        if descriptor >= 0 {
            Glibc.close(descriptor)
            descriptor = -1
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .system("open \(temporary)", errno) }
        do throws(FileError) {
            try write(SaltLog.encode(salts, saltLength: saltLength, cleanStop: cleanStop), to: fd)
            guard fsync(fd) == 0 else { throw .system("fsync \(temporary)", errno) }
        } catch {
            Glibc.close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            Glibc.close(fd)
            unlink(temporary)
            throw .system("rename \(temporary)", code)
        }
        syncDirectory()
        descriptor = fd
        records = salts.count
    }

    /// Appends `salts` and syncs them; after a failure the caller rewrites the file.
    func append(_ salts: [[UInt8]]) throws(FileError) {
        guard !salts.isEmpty else { return }
        guard descriptor >= 0 else { throw .system("append to \(path): not open", EBADF) }
        guard lseek(descriptor, 0, SEEK_END) >= 0 else { throw .system("lseek \(path)", errno) }
        try write(SaltLog.records(salts, saltLength: saltLength), to: descriptor)
        guard fdatasync(descriptor) == 0 else { throw .system("fdatasync \(path)", errno) }
        records += salts.count
    }

    private func write(_ bytes: [UInt8], to fd: Int32) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system("write \(path)", errno)
            }
            offset += count
        }
    }

    /// Makes the rename durable.
    private func syncDirectory() {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(
            directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        Glibc.close(fd)
    }
}
