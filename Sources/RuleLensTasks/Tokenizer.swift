import RuleLensNumerics

/// The character-level tokenizer every RuleLens task uses.
///
/// Fixed vocabulary of 99 tokens (stored as `vocab.json` with every checkpoint):
/// - 0 `<pad>`, 1 `<bos>`, 2 `<eos>` — special tokens;
/// - 3 `"\n"` — newline (scratchpad and rule-following targets are multi-line);
/// - 4…98 — the 95 printable ASCII characters from space (32) to `~` (126), in code order.
///
/// Anything else (tabs, non-ASCII letters, emoji) is a `RuleLensError` naming the character and its position.
public struct CharTokenizer: Sendable, Equatable {
    public static let pad: Int32 = 0
    public static let bos: Int32 = 1
    public static let eos: Int32 = 2
    public static let specialTokens = ["<pad>", "<bos>", "<eos>"]

    /// The standard vocabulary described above.
    public static let standard = CharTokenizer()

    /// Token strings by id.
    public let tokens: [String]
    private let idOfScalar: [UInt32: Int32]

    private init() {
        var t = CharTokenizer.specialTokens
        t.append("\n")
        for code in 32...126 { t.append(String(UnicodeScalar(UInt8(code)))) }
        self.init(tokensUnchecked: t)
    }

    private init(tokensUnchecked t: [String]) {
        tokens = t
        var map: [UInt32: Int32] = [:]
        for (i, s) in t.enumerated() where !CharTokenizer.specialTokens.contains(s) {
            if let scalar = s.unicodeScalars.first, s.unicodeScalars.count == 1 { map[scalar.value] = Int32(i) }
        }
        idOfScalar = map
    }

    /// Rebuilds a tokenizer from a checkpoint's `vocab.json` (token → id).
    public init(vocab: [String: Int]) throws {
        let n = vocab.count
        var t = [String](repeating: "", count: n)
        for (token, id) in vocab {
            guard id >= 0 && id < n, t[id].isEmpty else {
                throw RuleLensError("vocab.json maps \"\(token)\" to id \(id), which is out of range or used twice",
                                    fix: "use the vocab.json RuleLens wrote with the checkpoint")
            }
            t[id] = token
        }
        guard Array(t.prefix(3)) == CharTokenizer.specialTokens else {
            throw RuleLensError("vocab.json does not start with <pad>, <bos>, <eos> at ids 0, 1, 2",
                                fix: "use the vocab.json RuleLens wrote with the checkpoint")
        }
        self.init(tokensUnchecked: t)
    }

    /// Vocabulary size.
    public var count: Int { tokens.count }

    /// Token → id, the content of `vocab.json`.
    public var vocab: [String: Int] {
        Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
    }

    /// Encodes `text` one token per character. Throws naming the first character outside the vocabulary
    /// and its 1-based position; `context` (e.g. "line 12 of train.jsonl, field prompt") is added to the message.
    public func encode(_ text: String, context: String? = nil) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for (i, scalar) in text.unicodeScalars.enumerated() {
            guard let id = idOfScalar[scalar.value] else {
                let shown = scalar.value < 32 || scalar.value == 127
                    ? "U+" + String(scalar.value, radix: 16, uppercase: true) : "\"\(scalar)\" (U+\(String(scalar.value, radix: 16, uppercase: true)))"
                let whereText = context.map { " in \($0)" } ?? ""
                throw RuleLensError(
                    "character \(shown) at position \(i + 1)\(whereText) is not in the RuleLens character vocabulary",
                    fix: "use printable ASCII (space to ~) and newlines only; replace or remove that character")
            }
            out.append(id)
        }
        return out
    }

    /// Decodes ids back to text; special tokens are dropped.
    public func decode<S: Sequence>(_ ids: S) -> String where S.Element == Int32 {
        var s = ""
        for id in ids where id >= 3 && Int(id) < tokens.count { s += tokens[Int(id)] }
        return s
    }
}
