/// Why a relay connection is refused or closed. The text goes to the log (and, for a family-W handshake
/// failure, to the client in ServerDeniesAuth), never secrets.
public enum RelayError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A frame whose declared or actual size exceeds the limit.
    case frameTooLarge(Int)
    /// A frame type the client must not send (or does not exist).
    case unexpectedFrameType(UInt64)
    /// A frame whose body does not have the layout its type requires.
    case malformedFrame(String)
    /// A data frame before the handshake finished.
    case notAuthenticated
    /// The handshake failed: a bad key, signature, magic or version.
    case authenticationFailed(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let size): "frame of \(size) bytes exceeds the limit"
        case .unexpectedFrameType(let type): "unexpected frame type \(type)"
        case .malformedFrame(let why): "malformed frame: \(why)"
        case .notAuthenticated: "data frame before the handshake"
        case .authenticationFailed(let why): "authentication failed: \(why)"
        }
    }
}
