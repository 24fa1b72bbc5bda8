import IrohCore
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// `Upgrade: iroh derp http` on `/relay` (or `/derp`): family L over the raw stream. No `Connection` header is
/// required; 0.35 clients send none.
final class LegacyStreamUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = UpgradeDispatch.legacyUpgradeToken
    let requiredUpgradeHeaders: [String] = []
    private let hub: RelayHub

    struct Declined: Error {}

    init(hub: RelayHub) {
        self.hub = hub
    }

    func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    )
        -> EventLoopFuture<HTTPHeaders>
    {
        let decision = UpgradeDispatch(
            method: upgradeRequest.method.rawValue, uri: upgradeRequest.uri,
            headers: upgradeRequest.headers.map { ($0.name, $0.value) })
        guard decision == .legacyStream else { return channel.eventLoop.makeFailedFuture(Declined()) }
        return channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let connection = RelayConnectionHandler(
            family: .legacy, streamHeader: true, hub: hub, logger: hub.logger)
        do {
            try context.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(LegacyStreamDecoder(maxFrameSize: hub.limits.maxFrameSize)), connection)
            return context.eventLoop.makeSucceededVoidFuture()
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
    }
}

extension RelayHub {
    /// WebSocket on `/relay`: family W when an `iroh-relay-v*` sub-protocol is offered (the highest is echoed),
    /// family L over messages when none is.
    func makeWebSocketUpgrader() -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: limits.maxFrameSize, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                var headers = HTTPHeaders()
                switch Self.dispatch(head) {
                case .legacyWebSocket: break
                case .relayWebSocket(let version):
                    headers.add(name: "Sec-WebSocket-Protocol", value: version.subprotocol)
                default: return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { [self] channel, head in
                let family: RelayFamily
                if case .relayWebSocket(let version) = Self.dispatch(head) {
                    family = .relay(version)
                } else {
                    family = .legacy
                }
                let connection = RelayConnectionHandler(
                    family: family, streamHeader: false, hub: self, logger: logger)
                do {
                    try channel.pipeline.syncOperations.addHandlers(
                        WebSocketMessageHandler(maxMessageSize: limits.maxFrameSize), connection)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            })
    }

    static func dispatch(_ head: HTTPRequestHead) -> UpgradeDispatch {
        UpgradeDispatch(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) })
    }
}
