// The wire decoder under libFuzzer. scripts/fuzz.sh builds this with -sanitize=fuzzer
// -DFUZZING; a plain build makes a replay tool instead: `ConvoyFuzz FILE...` decodes each
// file as a frame (to re-run an input libFuzzer saved).
import ConvoyCluster
import Foundation

/// Decoding must return a message or throw a `ProtocolError`, and a decoded message must
/// re-encode to a frame that decodes to the same message.
func check(_ frame: [UInt8]) {
    guard let message = try? Message(decoding: frame) else { return }
    guard let again = try? Message(decoding: message.encoded()), again == message else {
        fatalError("a decoded message did not survive re-encoding")
    }
}

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    @main
    struct Fuzz {
        static func main() {
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(
                runFuzzerDriver(&argc, &argv) { data, size in
                    check(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
                    return 0
                })
        }
    }
#else
    @main
    struct Replay {
        static func main() {
            for path in CommandLine.arguments.dropFirst() {
                guard let data = FileManager.default.contents(atPath: path) else {
                    print("\(path): cannot read")
                    exit(1)
                }
                check(Array(data))
                print("\(path): ok")
            }
        }
    }
#endif
