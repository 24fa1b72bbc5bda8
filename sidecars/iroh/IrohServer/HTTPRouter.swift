import Foundation
import IrohCore
import NIOCore
import NIOHTTP1

/// The plain HTTP endpoints, and the answer to a `/relay` request that was not upgraded (notes §5).
final class HTTPRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "iroh-http-router"
    static let indexPage = """
        chatmail iroh relay

        This server relays iroh traffic (Delta Chat webxdc realtime channels) for iroh 0.35 and iroh 1.x
        clients on /relay.

        """

    private let hub: RelayHub
    /// The relay's site (`/new`, autoconfiguration, the root page), on the HTTPS front only.
    private let site: FrontSite?
    private var head: HTTPRequestHead?

    init(hub: RelayHub, site: FrontSite? = nil) {
        self.hub = hub
        self.site = site
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, to: head)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Upgraders that declined report it here; the request then gets its answer from `respond`.
        if error is HTTPParserError { context.close(promise: nil) }
    }

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        var headers = HTTPHeaders()
        var status = HTTPResponseStatus.ok
        var body = ""
        switch (head.method, path) {
        case (.GET, "/ping"), (.HEAD, "/ping"):
            headers.add(name: "Access-Control-Allow-Origin", value: "*")
        case (.GET, "/generate_204"), (.HEAD, "/generate_204"):
            status = .noContent
            for (name, value) in CaptivePortal.responseHeaders(for: head.headers.map { ($0.name, $0.value) }) {
                headers.add(name: name, value: value)
            }
        case (.GET, "/healthz"):
            headers.add(name: "Content-Type", value: "application/json")
            body = Self.health(hub.counters)
        case (.POST, "/new") where site != nil:
            let answer = site!.newAccount(from: context.remoteAddress?.ipAddress ?? "unknown")
            hub.countNewAccount(status: answer.status)
            status = HTTPResponseStatus(statusCode: answer.status)
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Cache-Control", value: "no-store")
            body = answer.body
        case (.GET, "/.well-known/autoconfig/mail/config-v1.1.xml") where site != nil,
            (.GET, "/mail/config-v1.1.xml") where site != nil:
            headers.add(name: "Content-Type", value: "application/xml; charset=utf-8")
            body = site!.onboarding.autoconfigXML
        case (.GET, "/"), (.GET, "/index.html"):
            if let site {
                headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
                body = site.onboarding.indexHTML
            } else {
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
                body = Self.indexPage
            }
        case (.GET, "/robots.txt"):
            headers.add(name: "Content-Type", value: "text/plain")
            body = "User-agent: *\nDisallow: /\n"
        default:
            let decision = UpgradeDispatch(
                method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) })
            if case .reject(let code, let extra, let reason) = decision {
                status = HTTPResponseStatus(statusCode: code)
                for (name, value) in extra { headers.add(name: name, value: value) }
                body = reason + "\n"
            } else {
                status = .badRequest
                body = "upgrade refused\n"
            }
            headers.add(name: "Content-Type", value: "text/plain")
        }
        if status != .noContent { headers.add(name: "Content-Length", value: "\(body.utf8.count)") }
        let keepAlive = head.isKeepAlive && status.code < 400
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if !body.isEmpty && head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    private static func health(_ counters: RelayCounters) -> String {
        struct Health: Encodable {
            var status = "ok"
            var version = "chatmail-iroh"
            var counters: RelayCounters
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(Health(counters: counters))) ?? Data("{\"status\":\"ok\"}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
