/// Bounds on what one client may make the server buffer.
public struct IMAPLimits: Sendable, Equatable {
    /// The longest line, without the literals it announces.
    public var lineLength: Int
    /// The largest literal a command may carry (LOGIN, SETMETADATA, APPEND's message).
    public var literalSize: Int
    /// The largest command, literals included.
    public var commandSize: Int

    public init(lineLength: Int = 8192, literalSize: Int = 65536, commandSize: Int = 262_144) {
        self.lineLength = lineLength
        self.literalSize = literalSize
        self.commandSize = commandSize
    }
}

/// Cuts the client's byte stream into complete commands, literals included.
///
/// A command is one or more lines; a line ending in `{N}` or `{N+}` is followed by N bytes of
/// literal and then the rest of the command. A synchronising literal (`{N}`) makes the framer
/// report `.continuationNeeded` so that the server can send `+`. The frames it returns keep the
/// literal markers and data but lose the final line end.
public struct CommandFramer: Sendable {
    public enum Event: Equatable, Sendable {
        case command([UInt8])
        /// A synchronising literal was announced: send a continuation request.
        case continuationNeeded
        /// The current line grew past the limit; the stream cannot be resynchronised.
        case lineTooLong
        /// A literal was announced that is too large. `tag` is the command's tag as far as it was
        /// read. After a synchronising literal the client sends nothing more for this command and
        /// framing continues; after a non-synchronising one its data follows and cannot be told
        /// apart from commands, so the connection has to close.
        case literalTooLarge(tag: String, synchronizing: Bool)
    }

    public var limits: IMAPLimits
    private var input: [UInt8] = []
    private var inputStart = 0
    private var frame: [UInt8] = []
    private var lineStart = 0
    private var literalRemaining = 0
    private var failed = false

    public init(limits: IMAPLimits = IMAPLimits()) {
        self.limits = limits
    }

    /// Bytes received and not yet part of a returned frame (for STARTTLS: must be none).
    public var hasBufferedInput: Bool { inputStart < input.count || !frame.isEmpty }

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if inputStart > 0 && inputStart == input.count {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
        }
        input.append(contentsOf: bytes)
    }

    /// Drops everything buffered (after STARTTLS, so that nothing sent in clear is used).
    public mutating func discardBuffered() {
        input.removeAll()
        inputStart = 0
        frame.removeAll()
        lineStart = 0
        literalRemaining = 0
    }

    /// The next event, or nil when more input is needed.
    public mutating func next() -> Event? {
        guard !failed else { return nil }
        while inputStart < input.count {
            if literalRemaining > 0 {
                let take = min(literalRemaining, input.count - inputStart)
                frame.append(contentsOf: input[inputStart..<inputStart + take])
                inputStart += take
                literalRemaining -= take
                if literalRemaining == 0 { lineStart = frame.count }
                continue
            }
            let byte = input[inputStart]
            inputStart += 1
            if byte != UInt8(ascii: "\n") {
                frame.append(byte)
                if frame.count - lineStart > limits.lineLength || frame.count > limits.commandSize {
                    failed = true
                    return .lineTooLong
                }
                continue
            }
            var lineEnd = frame.count
            if lineEnd > lineStart && frame[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            if let literal = Self.literalAnnouncement(frame[lineStart..<lineEnd]) {
                if literal.size > limits.literalSize || frame.count + literal.size > limits.commandSize {
                    let tag = Self.tag(of: frame)
                    frame.removeAll(keepingCapacity: true)
                    lineStart = 0
                    if !literal.synchronizing { failed = true }
                    return .literalTooLarge(tag: tag, synchronizing: literal.synchronizing)
                }
                frame.append(byte)
                literalRemaining = literal.size
                lineStart = frame.count
                if literalRemaining == 0 { lineStart = frame.count }
                if literal.synchronizing { return .continuationNeeded }
                continue
            }
            let command = Array(frame[0..<lineEnd])
            frame.removeAll(keepingCapacity: true)
            lineStart = 0
            return .command(command)
        }
        return nil
    }

    /// `{N}` or `{N+}` at the end of a line.
    static func literalAnnouncement(_ line: ArraySlice<UInt8>) -> (size: Int, synchronizing: Bool)? {
        guard line.last == UInt8(ascii: "}") else { return nil }
        var index = line.index(before: line.endIndex)
        var synchronizing = true
        if index > line.startIndex, line[index - 1] == UInt8(ascii: "+") {
            synchronizing = false
            index -= 1
        }
        var digitsStart = index
        while digitsStart > line.startIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[digitsStart - 1]) {
            digitsStart -= 1
        }
        guard digitsStart < index, digitsStart > line.startIndex, line[digitsStart - 1] == UInt8(ascii: "{"),
            index - digitsStart <= 10
        else { return nil }
        var size = 0
        for digit in line[digitsStart..<index] { size = size * 10 + Int(digit - UInt8(ascii: "0")) }
        return (size, synchronizing)
    }

    static func tag(of frame: [UInt8]) -> String {
        let end = frame.firstIndex(of: UInt8(ascii: " ")) ?? frame.count
        let tag = frame[0..<end]
        return tag.allSatisfy(IMAPGrammar.isTagChar) && !tag.isEmpty ? String(decoding: tag, as: UTF8.self) : "*"
    }
}
