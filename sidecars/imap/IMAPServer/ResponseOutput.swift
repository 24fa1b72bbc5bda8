import IMAPCore
import NIOCore

/// Responses waiting to go out, handed to the channel in chunks of at most `chunkSize` bytes.
/// A literal (a message body) stays the one array the store gave and is copied a chunk at a
/// time, so that a large FETCH is held once and the channel's buffer stays bounded.
struct ResponseOutput {
    static let chunkSize = 65536

    private var lines = CircularBuffer<ResponseLine>()
    /// Where the first line's encoding stands: its part, and the bytes of a literal already out
    /// (nil while the literal's `{N}` header is still to be written).
    private var part = 0
    private var literalOffset: Int?
    /// Bytes still to be written (literal headers estimated generously).
    private(set) var pendingBytes = 0

    var isEmpty: Bool { lines.isEmpty }

    mutating func append(_ responses: [ResponseLine]) {
        for response in responses {
            lines.append(response)
            pendingBytes += response.encodedSize
        }
    }

    /// The next chunk of wire bytes, or nil when everything has been handed out.
    mutating func nextChunk(allocator: ByteBufferAllocator, chunkSize: Int = chunkSize) -> ByteBuffer? {
        guard !lines.isEmpty else { return nil }
        var buffer = allocator.buffer(capacity: min(chunkSize, pendingBytes))
        while buffer.readableBytes < chunkSize, let line = lines.first {
            guard part < line.parts.count else {
                buffer.writeStaticString("\r\n")
                lines.removeFirst()
                part = 0
                continue
            }
            switch line.parts[part] {
            case .text(let text):
                buffer.writeString(text)
                part += 1
            case .literal(let bytes):
                let offset = literalOffset ?? 0
                if literalOffset == nil { buffer.writeString("{\(bytes.count)}\r\n") }
                let take = max(0, min(bytes.count - offset, chunkSize - buffer.readableBytes))
                buffer.writeBytes(bytes[offset..<offset + take])
                if offset + take == bytes.count {
                    part += 1
                    literalOffset = nil
                } else {
                    literalOffset = offset + take
                }
            }
        }
        pendingBytes = lines.isEmpty ? 0 : max(0, pendingBytes - buffer.readableBytes)
        return buffer
    }
}

extension ResponseLine {
    /// An upper bound for the wire size (literal headers counted generously).
    var encodedSize: Int {
        parts.reduce(2) { size, part in
            switch part {
            case .text(let text): size + text.utf8.count
            case .literal(let bytes): size + bytes.count + 16
            }
        }
    }
}
