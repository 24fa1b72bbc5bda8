import CChatmailShims
import ChatmailSupervisorCore
import Dispatch
import Glibc

/// Spawning and watching one child process: posix_spawn through the C shim (never fork from
/// Swift), a pidfd watched by a Dispatch read source, and signals to the child's process group.
enum ChildProcess {
    struct SpawnError: Error, CustomStringConvertible {
        var errno: Int32
        var program: String
        var notFound: Bool { errno == ENOENT || errno == ENOTDIR }
        var description: String {
            notFound ? "\(program) is not installed" : "cannot start \(program): \(String(cString: strerror(errno)))"
        }
    }

    /// Spawns `argv` with `environment`, `controlFD` as its fd 3, `outputFD` (when >= 0) as its
    /// stdout and stderr, in a process group of its own.
    static func spawn(argv: [String], environment: [String: String], controlFD: Int32, outputFD: Int32 = -1)
        throws(SpawnError) -> Int32
    {
        let env = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cArgv in
            withCStrings(env) { cEnv in cm_spawn(argv[0], cArgv, cEnv, controlFD, outputFD, &pid) }
        }
        guard rc == 0 else { throw SpawnError(errno: rc, program: argv[0]) }
        return pid
    }

    /// Calls `onExit` once, on `queue`, when the process has exited and been reaped. Whatever it
    /// left in its process group is killed first, while the unreaped leader still pins the group
    /// id (so the signal cannot reach a newer process). Returns nil when no pidfd could be opened.
    static func watch(pid: Int32, queue: DispatchQueue, onExit: @escaping @Sendable (ExitStatus) -> Void)
        -> (any DispatchSourceRead)?
    {
        let pidfd = cm_pidfd_open(pid)
        guard pidfd >= 0 else { return nil }
        let source = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: queue)
        source.setEventHandler {
            var exited: Int32 = 0
            var status: Int32 = 0
            kill(-pid, SIGKILL)
            guard cm_reap_pidfd(pidfd, &exited, &status) == 1 else { return }
            source.cancel()  // also releases this handler and its capture of the source
            onExit(exited != 0 ? .exited(status) : .signaled(status))
        }
        source.setCancelHandler { close(pidfd) }
        source.resume()
        return source
    }

    /// Signals the child's whole process group (the child leads it), falling back to the child.
    static func signal(group pid: Int32, _ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R)
        -> R
    {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
