import ChatmailMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `/metrics` over HTTP/1.1 for Prometheus (`[supervisor] metrics_listen`): GET /metrics only, one request per
/// connection (answered with `Connection: close`), at most `MetricsServer.requestLimit` bytes read from a
/// connection and `idleTimeout` of silence.
public final class MetricsServer: Sendable {
    static let requestLimit = 8192
    static let idleTimeout: TimeAmount = .seconds(10)

    private let channel: any Channel
    /// The bound address (the real port when configured with port 0).
    public let localAddress: SocketAddress?

    private init(channel: any Channel) {
        self.channel = channel
        localAddress = channel.localAddress
    }

    /// Binds `host:port`; each GET /metrics is answered with `render()`.
    public static func start(
        host: String, port: Int, group: any EventLoopGroup, render: @escaping @Sendable () async -> String
    ) async throws -> MetricsServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(RequestSizeLimit(limit: requestLimit))
                    try operations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try operations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try operations.addHandler(MetricsHandler(render: render))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsServer(channel: channel)
    }

    /// Supervisor wiring: serves `supervisor.metricsText` with a one-second wait per child.
    public static func start(
        host: String, port: Int, supervisor: Supervisor, group: any EventLoopGroup
    ) async throws -> MetricsServer {
        try await start(host: host, port: port, group: group) {
            await supervisor.metricsText(timeout: .seconds(1))
        }
    }

    public func stop() async {
        try? await channel.close()
    }
}

/// Closes a connection that sends more than `limit` bytes: a scrape is one small GET.
final class RequestSizeLimit: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limit: Int
    private var received = 0

    init(limit: Int) { self.limit = limit }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        guard received <= limit else {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

/// Answers one request: 200 with the exposition text for GET /metrics (a query is ignored), 404 for another
/// path, 405 for another method; then closes.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () async -> String
    private var head: HTTPRequestHead?
    private var answered = false

    init(render: @escaping @Sendable () async -> String) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head, !answered else { return }
            answered = true
            let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if head.method != .GET {
                respond(context.channel, status: .methodNotAllowed, body: "only GET\n", extra: [("Allow", "GET")])
            } else if path != "/metrics" {
                respond(context.channel, status: .notFound, body: "only /metrics\n")
            } else {
                scrape(context.channel)
            }
        }
    }

    /// Renders off the event loop (the supervisor actor asks the children) and answers when done.
    private func scrape(_ channel: any Channel) {
        let render = self.render
        Task { await MetricsHandler.serve(channel, render) }
    }

    private static func serve(_ channel: any Channel, _ render: @Sendable () async -> String) async {
        let text = await render()
        write(channel, status: .ok, body: text, extra: [("Content-Type", PrometheusText.contentType)])
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(
        _ channel: any Channel, status: HTTPResponseStatus, body: String, extra: [(String, String)] = []
    ) {
        Self.write(channel, status: status, body: body, extra: extra + [("Content-Type", "text/plain")])
    }

    private static func write(
        _ channel: any Channel, status: HTTPResponseStatus, body: String, extra: [(String, String)]
    ) {
        var headers = HTTPHeaders(extra)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
    }
}
