import ConvoyInterop

/// Who may join a CURVE-secured run: exactly the workers whose public keys the operator
/// listed (`--authorized-keys`). Everything else, including clients without CURVE, is
/// refused with the reason logged.
public struct AuthorizedKeys: Sendable {
    public let keys: Set<String>
    public init(_ keys: Set<String>) { self.keys = keys }

    public func decide(_ request: ZAPRequest) -> ZAPDecision {
        guard request.mechanism == "CURVE", let key = request.curveKey else {
            return ZAPDecision(allowed: false, reason: "CURVE required")
        }
        return keys.contains(key)
            ? ZAPDecision(allowed: true, reason: "OK")
            : ZAPDecision(allowed: false, reason: "unknown key \(key)")
    }
}
