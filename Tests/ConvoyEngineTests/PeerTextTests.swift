import Testing

@testable import ConvoyEngine

@Suite struct PeerTextTests {
    @Test func controlCharactersAndEscapesBecomeVisible() {
        let forged = "host\ncoordinator: run finished\u{1B}[2J\r"
        let shown = peerText(forged)
        #expect(!shown.contains("\n") && !shown.contains("\r") && !shown.contains("\u{1B}"))
        #expect(shown == "host\\u{a}coordinator: run finished\\u{1b}[2J\\u{d}")
    }

    @Test func longTextIsCutAtTheLimit() {
        let shown = peerText(String(repeating: "a", count: 1 << 20), limit: 100)
        #expect(shown.count == 101 && shown.hasSuffix("…"))
        #expect(peerText("plain-host.example") == "plain-host.example")
    }

    @Test func unicodeLettersStayReadable() {
        #expect(peerText("nœud-7") == "nœud-7")
        #expect(peerText("\u{7F}\u{85}") == "\\u{7f}\\u{85}")
    }
}
