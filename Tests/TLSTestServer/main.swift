// A TLS server for the integration tests: the project's OpenSSLHandler in front of a tiny
// plaintext service, so real clients (openssl s_client, Python ssl, curl) can be pointed at it.
//
//   chatmail-tls-testserver --identity CERT:KEY [--identity CERT:KEY ...] [--alpn a,b]
//                           [--mode echo|starttls|source:BYTES|http] [--listen 127.0.0.1:0]
//
// Prints "LISTENING <port>", then "HANDSHAKE alpn=… sni=… version=…" per handshake and
// "ERROR <error>" per failed connection. SIGHUP reloads the identities ("RELOADED" or
// "RELOAD FAILED <reason>"). Modes:
//   echo          sends every byte back
//   starttls      a line protocol: "* OK" greeting; "STARTTLS" → "OK begin TLS", then TLS;
//                 other lines → "PLAIN <line>" before TLS, "TLS <line>" after
//   source:BYTES  sends BYTES bytes of a fixed pattern after the handshake, honouring
//                 writability, then closes (for slow-reader tests)
//   http          answers any request with a short HTTP/1.1 200 response
import CChatmailShims
import ChatmailTLS
import Dispatch
import Foundation
import NIOCore
import NIOPosix

// Memory as every sidecar has it (Sidecar.main), so that the figures measured here are theirs.
cm_tune_malloc()

func argument(_ name: String) -> [String] {
    var values: [String] = []
    var iterator = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = iterator.next() { if arg == name, let value = iterator.next() { values.append(value) } }
    return values
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

let identities = argument("--identity").map { pair in
    let parts = pair.split(separator: ":", maxSplits: 1).map(String.init)
    return TLSIdentity(certificatePath: parts[0], keyPath: parts[1])
}
let alpn = argument("--alpn").first.map { $0.split(separator: ",").map(String.init) } ?? []
let mode = argument("--mode").first ?? "echo"
let listen = argument("--listen").first ?? "127.0.0.1:0"

let provider: TLSContextProvider
do {
    provider = try TLSContextProvider(identities: identities, alpn: alpn)
} catch {
    say("ERROR \(error)")
    exit(78)
}

/// Reports handshakes and errors, and runs the plaintext service behind TLS.
final class Service: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var plainLine = ByteBuffer()
    var tls = mode != "starttls"
    var remaining = 0

    func channelActive(context: ChannelHandlerContext) {
        if mode == "starttls" { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "* OK\r\n")), promise: nil) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? TLSHandshakeCompleted {
            say("HANDSHAKE alpn=\(done.alpn ?? "-") sni=\(done.serverName ?? "-") version=\(done.version)")
            if mode.hasPrefix("source:") {
                remaining = Int(mode.dropFirst(7)) ?? 0
                pump(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if remaining > 0 { pump(context: context) }
    }

    /// One block of the pattern, shared by every write (the bench measures TLS, not memset).
    static let block = ByteBuffer(repeating: 0x61, count: 64 * 1024)

    /// Writes while the channel is writable: the slow-reader test checks this stays bounded.
    func pump(context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            let size = min(remaining, Self.block.readableBytes)
            remaining -= size
            context.write(wrapOutboundOut(Self.block.getSlice(at: 0, length: size)!), promise: nil)
        }
        context.flush()
        if remaining == 0 { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch mode {
        case "echo":
            context.write(wrapOutboundOut(buffer), promise: nil)
        case "http":
            let body = "ok\n"
            let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case "starttls":
            plainLine.writeBuffer(&buffer)
            while let newline = plainLine.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let line = plainLine.readString(length: newline - plainLine.readerIndex)!
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                plainLine.moveReaderIndex(forwardBy: 1)
                if !tls && line == "STARTTLS" {
                    // Whatever the client sent after STARTTLS in plaintext is dropped: no injection.
                    plainLine.clear()
                    tls = true
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "OK begin TLS\r\n")), promise: nil)
                    try! context.pipeline.syncOperations.addHandler(try! provider.makeHandler(), position: .first)
                    return
                }
                context.writeAndFlush(
                    wrapOutboundOut(ByteBuffer(string: "\(tls ? "TLS" : "PLAIN") \(line)\r\n")), promise: nil)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        say("ERROR \(error)")
        context.close(promise: nil)
    }
}

let parts = listen.split(separator: ":")
let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.allowRemoteHalfClosure, value: true)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            if mode != "starttls" { try channel.pipeline.syncOperations.addHandler(try provider.makeHandler()) }
            try channel.pipeline.syncOperations.addHandler(Service())
        }
    }
let server = try await bootstrap.bind(host: String(parts[0]), port: Int(parts[1]) ?? 0).get()
say("LISTENING \(server.localAddress!.port!)")

signal(SIGHUP, SIG_IGN)
let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .main)
hup.setEventHandler {
    do {
        try provider.reload(identities: identities)
        say("RELOADED")
    } catch {
        say("RELOAD FAILED \(error)")
    }
}
hup.resume()
try await server.closeFuture.get()
