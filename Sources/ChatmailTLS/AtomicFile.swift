import Foundation

/// Files replaced whole: a reader sees the old content or the new, never a part.
enum AtomicFile {
    /// Writes `bytes` to `path` through a temporary file in the same directory: written, given
    /// `mode`, synced, renamed over `path`; the directory is synced after. On failure nothing
    /// changes at `path` and the temporary file is removed.
    static func write(_ bytes: some Collection<UInt8>, to path: String, mode: mode_t) throws(TLSError) {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        var template = Array("\(directory.isEmpty ? "." : directory)/.\(name).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw failure("cannot create a file next to \(path)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        func fail(_ what: String) -> TLSError {
            let error = failure("\(what) \(temporary)")
            close(fd)
            unlink(temporary)
            return error
        }
        guard fchmod(fd, mode) == 0 else { throw fail("cannot set the mode of") }
        let written = Array(bytes).withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        guard written else { throw fail("cannot write") }
        guard fsync(fd) == 0 else { throw fail("cannot sync") }
        guard close(fd) == 0 else {
            unlink(temporary)
            throw failure("cannot close \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Runs `body` holding an exclusive `flock` on `directory/.lock` (made if missing), so that
    /// processes making the same files take turns.
    static func withLock<T>(in directory: String, _ body: () throws(TLSError) -> T) throws(TLSError) -> T {
        let fd = open(directory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot open \(directory)/.lock") }
        defer { close(fd) }  // releases the lock
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw failure("cannot lock \(directory)/.lock") }
        }
        return try body()
    }

    private static func failure(_ what: String) -> TLSError {
        TLSError(.configuration, "\(what): \(String(cString: strerror(errno)))")
    }
}
