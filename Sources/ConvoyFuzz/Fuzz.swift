// The wire decoder and the file readers under libFuzzer. scripts/fuzz.sh builds this with
// -sanitize=fuzzer -DFUZZING and picks the target with CONVOY_FUZZ_TARGET (wire,
// checkpoint, model). A plain build makes a replay and mutation tool instead:
//   ConvoyFuzz [--target T] FILE...                      decode each file (an input libFuzzer saved)
//   ConvoyFuzz --mutate T --count N --seed S FILE        check N crafted mutations of a valid FILE
//   ConvoyFuzz --write-mutations T --count N --seed S FILE DIR   write them to DIR for scripts
import ConvoyEngine
import Foundation

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    nonisolated(unsafe) var fuzzTarget = FuzzTarget.wire

    @main
    struct Fuzz {
        static func main() {
            let name = ProcessInfo.processInfo.environment["CONVOY_FUZZ_TARGET"] ?? "wire"
            guard let target = FuzzTarget(rawValue: name) else {
                print("CONVOY_FUZZ_TARGET \(name) is not one of wire, checkpoint, model")
                exit(2)
            }
            fuzzTarget = target
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(
                runFuzzerDriver(&argc, &argv) { data, size in
                    fuzzTarget.check(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
                    return 0
                })
        }
    }
#else
    @main
    struct Replay {
        static func main() {
            var arguments = Array(CommandLine.arguments.dropFirst())
            func option(_ name: String) -> String? {
                guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
                defer { arguments.removeSubrange(index...(index + 1)) }
                return arguments[index + 1]
            }
            let target = option("--target").flatMap(FuzzTarget.init(rawValue:)) ?? .wire
            let mutate = option("--mutate").flatMap(FileFormat.init(rawValue:))
            let write = option("--write-mutations").flatMap(FileFormat.init(rawValue:))
            let count = option("--count").flatMap { Int($0) } ?? 200
            let seed = option("--seed").flatMap { UInt64($0) } ?? 1
            if let format = mutate ?? write {
                guard let path = arguments.first, let data = FileManager.default.contents(atPath: path) else {
                    fail("give a readable valid \(format.rawValue) file")
                }
                var mutator = FileMutator(format: format, original: Array(data), seed: seed)
                let mutations = mutator.mutations(count: count)
                if write != nil {
                    guard arguments.count == 2 else { fail("give the file and an output directory") }
                    writeMutations(mutations, to: arguments[1])
                } else {
                    checkMutations(mutations, target: format == .checkpoint ? .checkpoint : .model)
                }
                return
            }
            for path in arguments {
                guard let data = FileManager.default.contents(atPath: path) else { fail("\(path): cannot read") }
                target.check(Array(data))
                print("\(path): ok")
            }
        }
    }

    /// Decodes and uses every mutation in this process: a crash fails the run, and so does a
    /// mutation that must be refused but was accepted.
    func checkMutations(_ mutations: [Mutation], target: FuzzTarget) {
        var accepted = 0
        var wrong: [String] = []
        for mutation in mutations where target.check(mutation.bytes) {
            accepted += 1
            if mutation.expect == .refuse { wrong.append(mutation.name) }
        }
        let refused = mutations.count - accepted
        print("\(mutations.count) mutations of a \(target.rawValue): \(refused) refused, \(accepted) accepted")
        if !wrong.isEmpty { fail("accepted although invalid: \(wrong.joined(separator: "; "))") }
    }

    /// One file per mutation, named `NNNN-EXPECTATION-…` (refuse, resume-refuse, either), for
    /// scripts that load them with the real binary.
    func writeMutations(_ mutations: [Mutation], to directory: String) {
        for (index, mutation) in mutations.enumerated() {
            let slug = String(mutation.name.map { $0.isLetter || $0.isNumber ? $0 : "_" }.prefix(60))
            let number = String(index)
            let name =
                String(repeating: "0", count: max(0, 4 - number.count)) + number + "-"
                + mutation.expect.rawValue + "-" + slug
            guard FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(mutation.bytes)) else {
                fail("cannot write \(directory)/\(name)")
            }
        }
        print("wrote \(mutations.count) mutations to \(directory)")
    }

    func fail(_ line: String) -> Never {
        print(line)
        exit(1)
    }
#endif
