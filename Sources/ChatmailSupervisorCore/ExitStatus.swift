/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// `EX_CONFIG`: the child found its configuration unusable; restarting will not help.
    public static let configurationError = ExitStatus.exited(78)

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal):
            "signal \(signal)" + (ExitStatus.signalNames[signal].map { " (\($0))" } ?? "")
        }
    }

    private static let signalNames: [Int32: String] = [
        1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 6: "ABRT", 7: "BUS", 8: "FPE", 9: "KILL", 11: "SEGV", 13: "PIPE",
        14: "ALRM", 15: "TERM",
    ]
}
