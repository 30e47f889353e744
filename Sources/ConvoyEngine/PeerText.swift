import Foundation

/// Text that came from outside this process (a peer's host name or refusal reason, a file's
/// field) made safe to print: control characters, newlines and ANSI escapes become visible
/// `\u{..}` escapes, so a peer cannot forge log lines or drive the terminal, and the result is
/// cut at `limit` characters, so no peer string can make a log line longer than 8 KiB.
public func peerText(_ text: String, limit: Int = 256) -> String {
    var out = ""
    var count = 0
    for scalar in text.unicodeScalars {
        let piece: String
        switch scalar.value {
        case 0x20..<0x7F, 0xA0...: piece = String(scalar)
        default: piece = "\\u{\(String(scalar.value, radix: 16))}"
        }
        if count + piece.count > limit {
            out += "…"
            break
        }
        out += piece
        count += piece.count
    }
    return out
}

/// This host's name as `gethostname` gives it ("localhost" when it fails), for file names and
/// the names processes give themselves in logs and traces.
public func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name
}
