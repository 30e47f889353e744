import NIOCore
import NIOHTTP1
import NIOPosix

// Why these libraries: the issue asks for the server ecosystem's well-kept parts rather than
// hand-rolled ones. SwiftNIO's HTTP/1.1 codec handles the parsing (partial reads, keep-alive,
// pipelining, malformed requests answered 400) that a hand-written socket loop would get
// wrong, and it runs on one event-loop thread of its own, away from the training thread.
// The exposition text comes from swift-prometheus (MetricsEndpoint.swift).

/// A minimal HTTP/1.1 server for Prometheus scrapes: GET (or HEAD) /metrics answers the
/// exposition text, any other path 404, any other method 405. One event-loop thread; it
/// lives until `close()` or the end of the process.
final class MetricsServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// The bound port (the chosen one when 0 was asked for).
    let port: Int

    /// Binds `host:port` (a numeric address) and serves `exposition()` at /metrics.
    /// Throws NIO's errors (address in use, not an address of this host) as they come.
    init(host: String, port: Int, exposition: @escaping @Sendable () -> String) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(exposition: exposition))
                }
            }
        let bound: any Channel
        do { bound = try bootstrap.bind(host: host, port: port).wait() } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
        channel = bound
        self.port = bound.localAddress?.port ?? port
    }

    func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// What the server answers: kept apart from the socket code so the routes are tested
/// without one.
enum MetricsRoute {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func response(method: HTTPMethod, uri: String, exposition: () -> String) -> (HTTPResponseStatus, String) {
        // A scraper may add a query string (Prometheus does not, curl users might).
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else { return (.notFound, "not found: only /metrics is served here\n") }
        guard method == .GET || method == .HEAD else { return (.methodNotAllowed, "use GET\n") }
        return (.ok, exposition())
    }
}

/// One connection's requests, answered in order (NIO's pipelining helper holds later ones).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let exposition: @Sendable () -> String
    private var head: HTTPRequestHead?

    init(exposition: @escaping @Sendable () -> String) { self.exposition = exposition }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // a scrape has no body; whatever comes is ignored
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let (status, body) = MetricsRoute.response(method: head.method, uri: head.uri, exposition: exposition)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? MetricsRoute.contentType : "text/plain")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
