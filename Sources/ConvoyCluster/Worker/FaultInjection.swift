import ConvoyEngine
import Foundation

/// `convoy worker --inject-fault SPEC`, for testing audit mode: bad hardware on purpose. It
/// flips one low bit of the first gradient value of one result bucket of a training slice,
/// the kind of error a faulty core or bad RAM makes: the result stays well-formed and far
/// inside every bound, so no check of the result alone can catch it, only recomputing the
/// slice elsewhere. The bit is chosen just large enough to change the trained weights (see
/// `flipLowBit`). `slow:MS` instead plays a slow host for the straggler tests: every training
/// slice takes MS milliseconds longer, its results unchanged. The CLI refuses any of them unless
/// `CONVOY_ALLOW_FAULT_INJECTION=1` is set.
public final class FaultInjection {
    public enum Trigger: Equatable, Sendable {
        /// The first training slice of step N or later, once.
        case step(UInt64)
        /// Each training slice with probability P, a pure function of (step, slice).
        case rate(Double)
        /// Every training slice MS milliseconds late (and its compute time that much longer).
        case slow(milliseconds: Int)
    }

    public static let environmentVariable = "CONVOY_ALLOW_FAULT_INJECTION"
    public let trigger: Trigger
    private var fired = false
    /// The slice whose first bucket went by last: only one bucket of a slice is touched.
    private var lastSlice: (step: UInt64, slice: UInt32)?

    public init(_ trigger: Trigger) { self.trigger = trigger }

    /// The longest `slow` delay: one minute, past any sensible step deadline.
    public static let maxSlowMilliseconds = 60_000

    /// Parses `step:N`, `rate:P` (0 < P ≤ 1) or `slow:MS` (1...60,000); nil when `spec` is none.
    public convenience init?(spec: String) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        switch parts[0] {
        case "step":
            guard let n = UInt64(parts[1]) else { return nil }
            self.init(.step(n))
        case "rate":
            guard let p = Double(parts[1]), p > 0, p <= 1 else { return nil }
            self.init(.rate(p))
        case "slow":
            guard let ms = Int(parts[1]), (1...Self.maxSlowMilliseconds).contains(ms) else { return nil }
            self.init(.slow(milliseconds: ms))
        default: return nil
        }
    }

    /// `message`, corrupted when it is the first bucket of a slice the trigger picks;
    /// `log` hears about every corruption.
    public func apply(_ message: Message, log: (String) -> Void) -> Message {
        guard case var .result(result) = message.payload, result.gradient.count > 0 else { return message }
        if case let .slow(milliseconds) = trigger { return delayed(message, result, milliseconds) }
        let key = (message.step, result.slice)
        if let lastSlice, lastSlice == key { return message }
        lastSlice = key
        guard fires(step: message.step, slice: result.slice) else { return message }
        result.gradient.flipLowBit()
        log(
            "injected a fault (--inject-fault): flipped a low bit of gradient value \(result.gradientOffset) of "
                + "slice \(result.slice), step \(message.step)")
        var corrupted = message
        corrupted.payload = .result(result)
        return corrupted
    }

    /// Sleeps before a slice's first bucket goes out and adds the delay to that bucket's compute
    /// time: to the coordinator, a host that computes this much slower. Later buckets need no
    /// addition: a worker measures each from the step's arrival, so they include the sleep.
    private func delayed(_ message: Message, _ result: StepResult, _ milliseconds: Int) -> Message {
        let key = (message.step, result.slice)
        guard lastSlice.map({ $0 != key }) ?? true else { return message }
        lastSlice = key
        Thread.sleep(forTimeInterval: Double(milliseconds) / 1000)
        var result = result
        result.computeSeconds += Double(milliseconds) / 1000
        var slowed = message
        slowed.payload = .result(result)
        return slowed
    }

    private func fires(step: UInt64, slice: UInt32) -> Bool {
        switch trigger {
        case let .step(n):
            guard !fired, step >= n else { return false }
            fired = true
            return true
        case .slow:
            return false
        case let .rate(p):
            var random = SeededRandom(seed: 0xFA17, stream: step &* 4099 &+ UInt64(slice))
            return random.nextUnit() < p
        }
    }
}

extension StepResult.Gradient {
    /// Flips a low bit of the first value: bit 20 of a fixed-point sum (2^-12, against a bound
    /// of 2^50 per slice) or bit 12 of a Float's 23-bit mantissa (2^-11 relative). Bit 0 would
    /// often vanish when the sum is rounded to Float32 and leave the weights unchanged, which
    /// tests nothing.
    mutating func flipLowBit() {
        switch self {
        case .none: break
        case var .fixedPoint(values) where !values.isEmpty:
            values[0] ^= 1 << 20
            self = .fixedPoint(values)
        case var .float(values) where !values.isEmpty:
            values[0] = Float(bitPattern: values[0].bitPattern ^ (1 << 12))
            self = .float(values)
        default: break
        }
    }
}
