/// Key files, read the way ssh reads them: a secret key that another user could read, or a
/// list of authorized keys that another user could change, is refused with one line saying
/// why and how to fix it, before its contents are used. Sizes are bounded (a key file is a
/// few lines; `--key /dev/zero` must not hang).
extension CurveKeyPair {
    /// A key file is a comment or two and one key line.
    static let maxKeyFileBytes = 64 << 10
    /// An authorized-keys file: ~42 bytes a key, so up to ~400,000 keys.
    static let maxAuthorizedKeysBytes = 16 << 20

    /// Reads the first key line of a public key file (lines starting with # are comments).
    public static func readKey(path: String, what: String) throws -> String {
        try firstKey(in: try keyFile(path, what: what, maxBytes: maxKeyFileBytes), path: path, what: what)
    }

    /// Reads a secret key file (`--curve-key`, `--key`): it must be a regular file of this
    /// user (or root) that neither group nor others may read or write, as ssh insists.
    public static func readSecretKey(path: String, what: String) throws -> String {
        let bytes = try keyFile(path, what: what, maxBytes: maxKeyFileBytes) { status in
            try checkOwner(status, path: path, what: what)
            guard status.mode & 0o077 == 0 else {
                throw CurveKeyError(
                    "\(what) \(path): UNPROTECTED PRIVATE KEY FILE: mode \(octal(status.mode)) lets others than its "
                        + "owner use the secret key; run chmod 600 \(path)")
            }
        }
        return try firstKey(in: bytes, path: path, what: what)
    }

    /// An authorized-keys file: one Z85 public key per line, # comments, blank lines. Who can
    /// write it decides who joins, so like ssh's authorized_keys it must not be writable by
    /// group or others.
    public static func readAuthorizedKeys(path: String) throws -> Set<String> {
        let what = "--authorized-keys"
        let bytes = try keyFile(path, what: what, maxBytes: maxAuthorizedKeysBytes) { status in
            try checkOwner(status, path: path, what: what)
            guard status.mode & 0o022 == 0 else {
                throw CurveKeyError(
                    "\(what) \(path): mode \(octal(status.mode)) lets others than its owner add keys; run "
                        + "chmod go-w \(path)")
            }
        }
        var keys = Set<String>()
        for key in keyLines(bytes) {
            guard isValidKey(key.text) else {
                throw CurveKeyError("authorized keys \(path) line \(key.line): not a 40-character Z85 CURVE public key")
            }
            keys.insert(key.text)
        }
        guard !keys.isEmpty else { throw CurveKeyError("authorized keys \(path): no keys in it") }
        return keys
    }

    private static func keyFile(
        _ path: String, what: String, maxBytes: Int, check: (Files.Status) throws -> Void = { _ in }
    ) throws -> [UInt8] {
        do { return try Files.read(path, what: what, maxBytes: maxBytes, check: check) } catch let error as FileError {
            throw CurveKeyError(error.description)
        }
    }

    private static func checkOwner(_ status: Files.Status, path: String, what: String) throws {
        guard status.owner == Files.currentUser || status.owner == 0 else {
            throw CurveKeyError(
                "\(what) \(path): owned by user \(status.owner), not by this user (\(Files.currentUser)) or root")
        }
    }

    private static func firstKey(in bytes: [UInt8], path: String, what: String) throws -> String {
        guard let key = keyLines(bytes).first else { throw CurveKeyError("\(what) \(path): no key in it") }
        guard isValidKey(key.text) else {
            throw CurveKeyError("\(what) \(path) line \(key.line): not a 40-character Z85 CURVE key")
        }
        return key.text
    }

    /// Non-blank lines that are not # comments, with their line numbers. Bytes that are not
    /// UTF-8 become U+FFFD and fail the key check like any other wrong character.
    private static func keyLines(_ bytes: [UInt8]) -> [(line: Int, text: String)] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated().compactMap { index, raw in
            let line = Substring(String(decoding: raw, as: UTF8.self)).trimmingWhitespace()
            return line.isEmpty || line.hasPrefix("#") ? nil : (index + 1, line)
        }
    }

    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension Substring {
    /// Without leading and trailing spaces, tabs and carriage returns.
    fileprivate func trimmingWhitespace() -> String {
        let blank: Set<Character> = [" ", "\t", "\r"]
        return String(drop { blank.contains($0) }.reversed().drop { blank.contains($0) }.reversed())
    }
}
