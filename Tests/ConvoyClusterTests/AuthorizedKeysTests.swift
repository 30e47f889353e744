import ConvoyCluster
import ConvoyInterop
import Testing

/// The coordinator's admission policy, apart from the ZAP plumbing that asks it.
@Suite struct AuthorizedKeysTests {
    @Test func onlyListedCurveKeysAreAdmitted() throws {
        let listed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let policy = AuthorizedKeys([listed.publicKey])
        #expect(policy.decide(ZAPRequest(mechanism: "CURVE", curveKey: listed.publicKey)).allowed)
        let refused = policy.decide(ZAPRequest(mechanism: "CURVE", curveKey: stranger.publicKey))
        #expect(!refused.allowed && refused.reason == "unknown key \(stranger.publicKey)")
        let plain = policy.decide(ZAPRequest(mechanism: "NULL", curveKey: nil))
        #expect(!plain.allowed && plain.reason == "CURVE required")
    }
}
