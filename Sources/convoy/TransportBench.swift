import ArgumentParser
import ConvoyEngine
import ConvoyInterop
import Foundation

/// Round trips of one step's traffic shape over ZeroMQ on loopback: the floor under a
/// cluster step's communication.
struct TransportBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-transport",
        abstract: "Round-trip time of step-sized ZeroMQ messages over tcp://127.0.0.1.")

    @Option(help: "Bytes coordinator → worker (weights + samples).") var request = 272_000
    @Option(help: "Bytes worker → coordinator (a fixed-point gradient).") var reply = 493_700
    @Option(help: "Round trips to time.") var rounds = 500
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        try checkFlag("request", request, in: FlagRange.messageBytes)
        try checkFlag("reply", reply, in: FlagRange.messageBytes)
        try checkFlag("rounds", rounds, in: FlagRange.rounds)
        // Each message exists a few times at once: the payload, libzmq's copy and the peer's.
        try MemoryBudget.check(4 * Double(request + reply), for: "--request \(request) and --reply \(reply)")
    }

    func run() throws {
        reportingErrors {
            let context = ZMQContext()
            let router = try ZMQSocket(context: context, kind: .router)
            try router.bind("tcp://127.0.0.1:*")
            let endpoint = router.lastEndpoint
            let replySize = reply
            let total = rounds + 20
            let echo = Thread {
                let dealer = try! ZMQSocket(context: context, kind: .dealer)
                try! dealer.connect(endpoint)
                try! dealer.send([[1]])
                let answer = [UInt8](repeating: 7, count: replySize)
                for _ in 0..<total {
                    _ = try! dealer.receive(timeoutMs: -1)
                    try! dealer.send([answer])
                }
            }
            echo.start()
            guard let hello = try router.receive(timeoutMs: 10_000) else { throw ExitCode.failure }
            let peer = hello[0]
            let payload = [UInt8](repeating: 3, count: request)
            var times: [Double] = []
            for round in 0..<total {
                let started = ContinuousClock.now
                try router.send([peer, payload])
                _ = try router.receive(timeoutMs: -1)
                if round >= 20 { times.append(secondsSince(started) * 1000) }
            }
            times.sort()
            let median = times[times.count / 2]
            let p99 = times[min(times.count - 1, times.count * 99 / 100)]
            if json {
                ProgressPrinter.line(
                    "{\"request_bytes\":\(request),\"reply_bytes\":\(reply),"
                        + "\"median_rtt_ms\":\(median),\"p99_rtt_ms\":\(p99)}"
                )
            } else {
                ProgressPrinter.line(
                    "\(request) B out, \(reply) B back: median round trip \(format(median, 3)) ms, p99 "
                        + "\(format(p99, 3)) ms"
                )
            }
        }
    }
}
