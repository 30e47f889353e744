@testable import ConvoyCluster
import ConvoyEngine
import Testing

/// Every rule a worker's result must meet, one test each: a broken or hostile worker is
/// caught here, before its numbers reach the step's sum.
@Suite struct ResultValidatorTests {
    static let architecture = try! Architecture(ModelZoo.lenet5)
    static let validator = ResultValidator(architecture: architecture, mode: .fixedPoint, microBatch: 8)
    static var head: Range<Int> { validator.buckets[0] }
    static var trunk: Range<Int> { validator.buckets[1] }

    static func bucket(
        _ range: Range<Int>, count: Int = 8, correct: Int = 3, lossSum: Double = 9.5,
        float: Bool = false
    ) -> StepResult {
        StepResult(
            slice: 0, count: count, correct: correct, lossSum: lossSum, computeSeconds: 0.01,
            gradientOffset: range.lowerBound,
            gradient: float
                ? .float(Array(repeating: 0, count: range.count))
                : .fixedPoint(Array(repeating: 0, count: range.count)))
    }

    @Test func theLayoutIsHeadThenTrunk() {
        #expect(Self.validator.buckets == [2572..<61706, 0..<2572])
    }

    @Test func honestBucketsInLayoutOrderPass() {
        let first = Self.bucket(Self.head)
        #expect(Self.validator.problem(with: first, expected: 8, evaluate: false, earlier: [], maxSeconds: 10) == nil)
        #expect(!Self.validator.isComplete([first], evaluate: false))
        let second = Self.bucket(Self.trunk)
        #expect(
            Self.validator.problem(with: second, expected: 8, evaluate: false, earlier: [first], maxSeconds: 10) == nil)
        #expect(Self.validator.isComplete([first, second], evaluate: false))
    }

    @Test func aSampleCountOtherThanTheSlicesIsRefused() {
        let problem = Self.validator.problem(
            with: Self.bucket(Self.head, count: 7), expected: 8, evaluate: false, earlier: [], maxSeconds: 10)
        #expect(problem == "7 samples, the slice has 8")
    }

    @Test func bucketsThatDisagreeOnTheTotalsAreRefused() {
        let problem = Self.validator.problem(
            with: Self.bucket(Self.trunk, lossSum: 1), expected: 8, evaluate: false,
            earlier: [Self.bucket(Self.head)], maxSeconds: 10)
        #expect(problem == "buckets of one slice disagree on its totals")
    }

    @Test func impossibleTotalsAreRefused() {
        #expect(
            Self.validator.problem(
                with: Self.bucket(Self.head, correct: 9), expected: 8, evaluate: false, earlier: [], maxSeconds: 10)
                == "9 correct of 8 samples")
        #expect(
            Self.validator.problem(
                with: Self.bucket(Self.head, lossSum: -1), expected: 8, evaluate: false, earlier: [], maxSeconds: 10
            )?.hasPrefix("loss sum -1.0 for 8 samples") == true)
    }

    @Test func theWrongKindOfGradientIsRefused() {
        let problem = Self.validator.problem(
            with: Self.bucket(Self.head, float: true), expected: 8, evaluate: false, earlier: [], maxSeconds: 10)
        #expect(problem == "wrong kind of gradient for this run")
    }

    @Test func bucketsOutOfLayoutOrderOrRepeatedAreRefused() {
        #expect(
            Self.validator.problem(
                with: Self.bucket(Self.trunk), expected: 8, evaluate: false, earlier: [], maxSeconds: 10)
                == "gradient bucket 0..<2572 where the model's layout has 2572..<61706")
        #expect(
            Self.validator.problem(
                with: Self.bucket(Self.head), expected: 8, evaluate: false,
                earlier: [Self.bucket(Self.head)], maxSeconds: 10)
                == "gradient bucket 2572..<61706 where the model's layout has 0..<2572")
        #expect(
            Self.validator.problem(
                with: Self.bucket(0..<61706), expected: 8, evaluate: false, earlier: [], maxSeconds: 10)
                == "gradient bucket 0..<61706 where the model's layout has 2572..<61706")
        #expect(
            Self.validator.problem(
                with: Self.bucket(Self.head), expected: 8, evaluate: false,
                earlier: [Self.bucket(Self.head), Self.bucket(Self.trunk)], maxSeconds: 10)
                == "more than 2 gradient buckets")
    }

    @Test func evaluationResultsCarryNoGradient() {
        var result = Self.bucket(Self.head)
        #expect(
            Self.validator.problem(with: result, expected: 8, evaluate: true, earlier: [], maxSeconds: 10)
                == "a gradient in an evaluation round")
        result.gradient = .none
        result.gradientOffset = 0
        #expect(Self.validator.problem(with: result, expected: 8, evaluate: true, earlier: [], maxSeconds: 10) == nil)
        #expect(Self.validator.isComplete([result], evaluate: true))
    }

    @Test func aModelWithoutAHeadHasOneBucket() throws {
        let conv1d = try Architecture(try ModelZoo.spec(named: "conv1d"))
        let validator = ResultValidator(architecture: conv1d, mode: .float, microBatch: 8)
        #expect(conv1d.gradientBuckets.count == (conv1d.headStart == nil ? 1 : 2))
        #expect(validator.buckets.first?.upperBound == conv1d.parameterCount)
    }
}
