import ConvoyEngine
import ConvoyInterop
import Foundation

/// Why `convoy status` got no report.
public enum StatusError: Error, CustomStringConvertible, Equatable {
    /// Nothing answered within `seconds`; `curve` when CURVE was in use.
    case noAnswer(endpoint: String, seconds: Double, curve: Bool)
    /// The coordinator refused the request.
    case refused(reason: String)

    public var description: String {
        switch self {
        case let .noAnswer(endpoint, seconds, curve):
            "no coordinator answered a status request at \(endpoint) within \(formatSeconds(seconds)) s"
                + (curve
                    ? " (with CURVE: is --server-key the coordinator's, and --key's public key among its authorized "
                        + "keys?)"
                    : " (is a coordinator of this convoy version running there?)")
        case let .refused(reason):
            "the coordinator refused the status request: \(peerText(reason))"
        }
    }
}

/// Asks a running coordinator for its status over a connection of its own, authenticated like
/// a worker's (a DEALER, a CURVE client when `curve` is given) but never admitted as one: a
/// `statusRequest` is not a `hello`.
public enum StatusClient {
    /// The report and the run id it came with.
    public static func query(
        endpoint: String, curve: (serverKey: String, keys: CurveKeyPair)?, timeout: Double
    ) throws -> (runID: UInt64, report: StatusReport) {
        // A reply is at most `StatusReport.maxListed` records: far under the control bound.
        let transport = try makeWorkerTransport(
            endpoint: endpoint, curve: curve, maxMessageBytes: Wire.headerSize + Wire.maxControlBytes)
        defer { transport.close() }
        let deadline = ContinuousClock.now + .seconds(clamping: timeout)
        let request = Message(runID: 0, payload: .statusRequest).encoded()
        var sent = false
        var resend = ContinuousClock.now
        while ContinuousClock.now < deadline {
            // Until connected (ZMQ_IMMEDIATE) a send does not queue; a coordinator that was
            // busy rate-limiting may have dropped the first request: ask again each second.
            if ContinuousClock.now >= resend {
                sent = try transport.send(request, dontWait: true) || sent
                resend = ContinuousClock.now + .milliseconds(sent ? 1000 : 50)
            }
            let left = min((deadline - ContinuousClock.now).inSeconds, (resend - ContinuousClock.now).inSeconds)
            guard let frames = try transport.receive(timeoutMs: max(Int(left * 1000), 1)) else { continue }
            guard frames.count == 1, let message = try? Message(decoding: frames[0]) else { continue }
            switch message.payload {
            case let .status(report): return (message.runID, report)
            case let .refuse(refusal): throw StatusError.refused(reason: refusal.reason)
            default: continue
            }
        }
        throw StatusError.noAnswer(endpoint: endpoint, seconds: timeout, curve: curve != nil)
    }
}
