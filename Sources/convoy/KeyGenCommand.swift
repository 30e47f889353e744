import ArgumentParser
import ConvoyCluster
import ConvoyEngine
import ConvoyInterop
import Foundation

struct KeyGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 600) and NAME.pub (public).",
        discussion:
            "The coordinator takes its NAME.key (--curve-key) and a file of the workers' public keys "
            + "(--authorized-keys); each worker takes its own NAME.key (--key) and the coordinator's NAME.pub "
            + "(--server-key)."
    )

    @Argument(help: "Path prefix of the two files.") var name: String
    @Flag(help: "Overwrite existing files.") var force = false

    /// Like ssh-keygen: the secret goes into a fresh file of mode 0600 (created with O_EXCL
    /// under an unpredictable name, then linked into place), and an existing key is replaced
    /// only with --force; the check is the link itself, so no race can slip a key past it.
    func run() throws {
        reportingErrors {
            let (secretPath, publicPath) = (name + ".key", name + ".pub")
            var existing = stat()
            for path in [secretPath, publicPath] where !force && lstat(path, &existing) == 0 {
                throw FlagError("\(path) exists; pass --force to overwrite it")
            }
            try checkOutputPath(secretPath)
            let pair = try CurveKeyPair.generate()
            let stamp = "# convoy CURVE key, \(ISO8601DateFormatter().string(from: Date()))\n"
            do {
                try writeAtomically(
                    Array((stamp + "# secret: keep it on this host\n" + pair.secretKey + "\n").utf8), to: secretPath,
                    mode: 0o600, replace: force)
            } catch  where !force && lstat(secretPath, &existing) == 0 {
                throw FlagError("\(secretPath) exists; pass --force to overwrite it")
            }
            do {
                try writeAtomically(Array((stamp + pair.publicKey + "\n").utf8), to: publicPath, replace: force)
            } catch {
                // Half a new pair is worse than none: a secret this run created is dropped
                // (with --force the old key is already replaced, so the new one stays).
                if !force { unlink(secretPath) }
                throw error
            }
            ProgressPrinter.line("wrote \(secretPath) (secret) and \(publicPath) (public: \(pair.publicKey))")
        }
    }
}
