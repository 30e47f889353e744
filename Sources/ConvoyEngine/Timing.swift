/// Durations measured on `ContinuousClock` (monotonic: an NTP step of the wall clock
/// cannot fire, stall or skew a deadline or a timing), as seconds.
extension Duration {
    /// Seconds as a Double, for reports and for comparing with timeouts given in seconds.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// Seconds since `start` on the monotonic clock.
public func secondsSince(_ start: ContinuousClock.Instant) -> Double { start.duration(to: .now).inSeconds }
