import ConvoyInterop
import Foundation
import Testing

/// Keys handled as ssh handles them (docs/SECURITY.md, "Files and keys").
@Suite(.serialized) struct KeyFileTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "convoy-keys-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String, mode: Int) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aSecretKeyOthersCanReadIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secret = try CurveKeyPair.generate().secretKey
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            let path = try write("k\(mode)", "# secret\n\(secret)\n", mode: mode)
            #expect(throws: CurveKeyError.self) { try CurveKeyPair.readSecretKey(path: path, what: "--key") }
            do { _ = try CurveKeyPair.readSecretKey(path: path, what: "--key") } catch {
                #expect("\(error)".contains("--key \(path): UNPROTECTED PRIVATE KEY FILE"), "\(error)")
                #expect("\(error)".contains("chmod 600"))
            }
        }
        for mode in [0o600, 0o400] {
            let path = try write("ok\(mode)", "# secret\r\n\(secret)\r\n", mode: mode)
            #expect(try CurveKeyPair.readSecretKey(path: path, what: "--key") == secret)
        }
        // A public key file needs no protection.
        let pub = try write("k.pub", try CurveKeyPair(secretKey: secret).publicKey + "\n", mode: 0o644)
        #expect(try CurveKeyPair.readKey(path: pub, what: "--server-key").count == 40)
    }

    @Test func anAuthorizedKeysFileOthersCanWriteIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try CurveKeyPair.generate().publicKey
        for mode in [0o666, 0o620, 0o602] {
            let path = try write("a\(mode)", key + "\n", mode: mode)
            #expect(throws: CurveKeyError.self) { try CurveKeyPair.readAuthorizedKeys(path: path) }
        }
        #expect(try CurveKeyPair.readAuthorizedKeys(path: try write("a644", key + "\n", mode: 0o644)) == [key])
    }

    /// Not a regular file, or far too large: one line, no hang, no memory spent.
    @Test func keyFilesAreBoundedAndRegular() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in ["/dev/zero", directory, fifo] {
            do {
                _ = try CurveKeyPair.readSecretKey(path: path, what: "--key")
                Issue.record("\(path) accepted")
            } catch {
                #expect("\(error)".contains("not a regular file") || "\(error)".contains("cannot read"), "\(error)")
            }
        }
        let huge = try write("huge", String(repeating: "#", count: 100_000), mode: 0o600)
        #expect(throws: CurveKeyError.self) { try CurveKeyPair.readSecretKey(path: huge, what: "--key") }
    }

    /// The secret key never goes through a name someone else prepared: a symlink planted at
    /// the temporary name the writer draws first is skipped (O_EXCL), its target untouched.
    @Test func aPlantedTemporaryFileCannotReceiveTheSecret() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/victim"
        try "victim\n".write(toFile: victim, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: directory + "/.k.key.planted.tmp", withDestinationPath: victim)
        try "stale\n".write(toFile: directory + "/.k.key.stale.tmp", atomically: false, encoding: .utf8)
        var names = ["planted", "stale"].makeIterator()
        let secret = Array("secret\n".utf8)
        try Files.writeAtomically(
            secret, to: directory + "/k.key", mode: 0o600, replace: false,
            tempName: { names.next() ?? Files.randomTempName() })
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "victim\n")
        #expect(try String(contentsOfFile: directory + "/.k.key.stale.tmp", encoding: .utf8) == "stale\n")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: directory + "/k.key"))) == secret)
        #expect(try mode(directory + "/k.key") == 0o600)
        // Without replace, an existing file or a dangling symlink at the name is never overwritten.
        #expect(throws: FileError.self) { try Files.writeAtomically([1], to: directory + "/k.key", replace: false) }
        try FileManager.default.createSymbolicLink(
            atPath: directory + "/dangling", withDestinationPath: directory + "/x")
        #expect(throws: FileError.self) { try Files.writeAtomically([1], to: directory + "/dangling", replace: false) }
        #expect(!FileManager.default.fileExists(atPath: directory + "/x"))
        // No temporary file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".k.key.") }
        #expect(left.sorted() == [".k.key.planted.tmp", ".k.key.stale.tmp"])
    }

    @Test func temporaryNamesAreUnpredictable() {
        let names = (0..<100).map { _ in Files.randomTempName() }
        #expect(Set(names).count == 100)
        #expect(names.allSatisfy { $0.count == 32 })
    }

    /// `convoy keygen`: 0600, never overwrites without --force, and --force replaces a planted
    /// symlink instead of writing through it.
    @Test func keygenWritesLikeSshKeygen() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let name = directory + "/node"
        let first = try runConvoy(["keygen", name], timeout: 60)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try mode(name + ".key") == 0o600)
        let secret = try String(contentsOfFile: name + ".key", encoding: .utf8)
        let again = try runConvoy(["keygen", name], timeout: 60)
        #expect(again.status == 1 && again.stderr.contains("node.key exists; pass --force"), "\(again.stderr)")
        #expect(try String(contentsOfFile: name + ".key", encoding: .utf8) == secret)
        let forced = try runConvoy(["keygen", name, "--force"], timeout: 60)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try String(contentsOfFile: name + ".key", encoding: .utf8) != secret)
        // A symlink planted at NAME.key (to a file the attacker will read) is never written through.
        let victim = directory + "/stolen"
        try FileManager.default.createSymbolicLink(atPath: directory + "/p.key", withDestinationPath: victim)
        let planted = try runConvoy(["keygen", directory + "/p"], timeout: 60)
        #expect(planted.status == 1 && planted.stderr.contains("p.key exists"), "\(planted.stderr)")
        #expect(try runConvoy(["keygen", directory + "/p", "--force"], timeout: 60).status == 0)
        #expect(!FileManager.default.fileExists(atPath: victim))
        #expect(try mode(directory + "/p.key") == 0o600)
    }

    /// `--key` and `--curve-key` refuse a secret key others can read, before connecting.
    @Test func unprotectedSecretKeysAreRefusedByTheCommands() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let name = directory + "/c"
        #expect(try runConvoy(["keygen", name], timeout: 60).status == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: name + ".key")
        let authorized = try write(
            "authorized", try String(contentsOfFile: name + ".pub", encoding: .utf8), mode: 0o644)
        let runs = [
            ["worker", "--connect", "tcp://127.0.0.1:1", "--server-key", name + ".pub", "--key", name + ".key"],
            [
                "coordinator", "--workers", "1", "--bind", "tcp://127.0.0.1:*", "--curve-key", name + ".key",
                "--authorized-keys", authorized, "--data", mnistDirectory,
            ],
        ]
        for arguments in runs {
            let result = try runConvoy(arguments, timeout: 60)
            #expect(result.status == 1, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains("UNPROTECTED PRIVATE KEY FILE: mode 0640"), "\(result.stderr)")
        }
    }
}
