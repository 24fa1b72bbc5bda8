import CChatmailShims
import ChatmailControl
import Foundation
import Logging
import NIOCore
import NIOPosix

/// One control connection on the supervisor's side, a child's or the CLI's: lines in, requests
/// handed to the supervisor one at a time (so a child's hello comes before its ready), answers out.
final class ControlConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let peer: Supervisor.Peer
    private let supervisor: Supervisor
    private let requests: AsyncStream<ControlRequest>.Continuation

    private init(peer: Supervisor.Peer, supervisor: Supervisor, channel: any Channel) {
        self.peer = peer
        self.supervisor = supervisor
        let (stream, continuation) = AsyncStream.makeStream(of: ControlRequest.self)
        self.requests = continuation
        Task {
            for await request in stream {
                let response = await supervisor.handle(request, from: peer)
                _ = try? await channel.writeLine(ControlCodec.encode(response)).get()
            }
        }
    }

    /// Adds the line framing and this handler to `channel`'s pipeline.
    static func install(on channel: any Channel, peer: Supervisor.Peer, supervisor: Supervisor) throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(
            ControlConnectionHandler(peer: peer, supervisor: supervisor, channel: channel))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        do {
            requests.yield(try ControlCodec.decodeRequest(line.readableBytesView))
        } catch {
            // A malformed request ends the connection, with one line saying why.
            let answer = ControlCodec.encode(ControlResponse.failure(0, "bad request: \(error)"))
            context.channel.writeLine(answer).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        requests.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The path socket operators reach the supervisor on. Only root and the supervisor's own uid may
/// connect (checked with SO_PEERCRED); anyone else is logged and disconnected.
public final class ControlServer: Sendable {
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    private let channel: any Channel
    public let path: String

    private init(channel: any Channel, path: String) {
        self.channel = channel
        self.path = path
    }

    /// Binds `path` (mode 0660). A stale socket file is replaced; a live one means another
    /// supervisor runs, which is an error.
    public static func start(
        path: String, supervisor: Supervisor, group: any EventLoopGroup, logger: Logger
    ) async throws -> ControlServer {
        if FileManager.default.fileExists(atPath: path) {
            if let client = try? await ControlClient.connect(path: path, group: group) {
                await client.close()
                throw StartError(description: "another supervisor is already running on \(path)")
            }
            unlink(path)
        }
        let ownUID = getuid()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                guard let provider = channel as? any SocketOptionProvider else {
                    return channel.eventLoop.makeFailedFuture(StartError(description: "no peer credentials"))
                }
                let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                    level: .init(SOL_SOCKET), name: .init(SO_PEERCRED))
                return credentials.flatMapThrowing { peer in
                    guard peer.uid == 0 || peer.uid == ownUID else {
                        logger.warning(
                            "refused a control connection", metadata: ["uid": "\(peer.uid)", "pid": "\(peer.pid)"])
                        throw StartError(description: "uid \(peer.uid) is not allowed")
                    }
                    try ControlConnectionHandler.install(on: channel, peer: .admin, supervisor: supervisor)
                }
            }
        let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
        chmod(path, 0o660)
        return ControlServer(channel: channel, path: path)
    }

    public func stop() async {
        try? await channel.close()
        unlink(path)
    }
}

/// `struct ucred` from <sys/socket.h>, which Glibc does not export without _GNU_SOURCE.
struct PeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
