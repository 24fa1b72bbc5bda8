import CZlib
import NIOCore

/// Raw deflate (RFC 1951, as COMPRESS=DEFLATE in RFC 4978 wants) on system zlib, one stream per
/// direction for the whole connection.
final class ZlibStream {
    enum Direction {
        case compress, decompress
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private var stream = z_stream()
    private let direction: Direction

    init(_ direction: Direction) throws {
        self.direction = direction
        let size = Int32(MemoryLayout<z_stream>.size)
        let result =
            switch direction {
            case .compress: deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), size)
            case .decompress: inflateInit2_(&stream, -15, zlibVersion(), size)
            }
        guard result == Z_OK else { throw Failure(description: "zlib init failed (\(result))") }
    }

    deinit {
        switch direction {
        case .compress: deflateEnd(&stream)
        case .decompress: inflateEnd(&stream)
        }
    }

    /// Runs `input` through the stream (sync-flushed when compressing, so the peer can read it
    /// at once); fails when decompressed output would pass `limit` bytes.
    func process(_ input: ByteBuffer, allocator: ByteBufferAllocator, limit: Int = .max) throws -> ByteBuffer {
        var output = allocator.buffer(capacity: max(256, input.readableBytes * (direction == .compress ? 1 : 4)))
        var input = input
        try input.withUnsafeMutableReadableBytes { pointer in
            stream.next_in = pointer.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(pointer.count)
            while true {
                if output.writableBytes < 1024 { output.reserveCapacity(output.capacity * 2) }
                let written = try output.writeWithUnsafeMutableBytes(minimumWritableBytes: 1024) { out in
                    stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    let result =
                        direction == .compress ? deflate(&stream, Z_SYNC_FLUSH) : inflate(&stream, Z_SYNC_FLUSH)
                    guard result == Z_OK || result == Z_BUF_ERROR || result == Z_STREAM_END else {
                        throw Failure(description: "zlib stream error (\(result))")
                    }
                    return out.count - Int(stream.avail_out)
                }
                guard output.readableBytes <= limit else { throw Failure(description: "decompressed data too large") }
                if stream.avail_in == 0 && stream.avail_out > 0 { break }
                if written == 0 && stream.avail_in == 0 { break }
            }
            stream.next_in = nil
        }
        return output
    }
}

/// Inflates what the client sends.
final class InflateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let stream: ZlibStream
    private let limit: Int

    init(limit: Int) throws {
        stream = try ZlibStream(.decompress)
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            let output = try stream.process(
                unwrapInboundIn(data), allocator: context.channel.allocator, limit: limit)
            if output.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(output)) }
        } catch {
            context.fireErrorCaught(error)
        }
    }
}

/// Deflates what the server writes.
final class DeflateHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let stream: ZlibStream

    init() throws {
        stream = try ZlibStream(.compress)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        do {
            let output = try stream.process(unwrapOutboundIn(data), allocator: context.channel.allocator)
            context.write(wrapOutboundOut(output), promise: promise)
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
        }
    }
}
