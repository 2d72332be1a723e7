import Foundation

/// What RuleLens needs from a tokenizer: text ↔ ids, and the ids it frames every example with.
///
/// Every job tokenizes an example as `[bos] + encode(prompt) + encode(target) + [eos]`. Prompt and target are
/// encoded separately, so the prompt always ends on a token boundary: the answer position (the last prompt
/// token, whose logits predict the first target token) is well defined for multi-character tokens too.
/// Two implementations: `CharTokenizer` (one token per character, the default for the built-in tasks) and
/// `BPETokenizer` (byte-level BPE read from a Hugging Face `tokenizer.json` or GPT-2's `vocab.json` + `merges.txt`).
public protocol TextTokenizer: Sendable {
    /// Number of ids (largest id + 1). A model's vocabulary must be at least this large.
    var count: Int { get }
    /// Id put before every prompt.
    var bos: Int32 { get }
    /// Id that ends every target; generation stops on it.
    var eos: Int32 { get }
    /// Id that fills padded batch positions (never scored).
    var pad: Int32 { get }
    /// "char" or "bpe", recorded with results.
    var kind: String { get }
    /// Ids of `text` (no special tokens added). `context` (e.g. "the prompt of example 3 of train.jsonl") is
    /// added to error messages.
    func encode(_ text: String, context: String?) throws -> [Int32]
    /// Text of `ids`; special tokens are dropped.
    func decodeIds(_ ids: [Int32]) -> String
    /// The files a checkpoint folder needs to reload this tokenizer (file name → bytes).
    func checkpointFiles() throws -> [String: Data]
}

extension TextTokenizer {
    /// Ids of `text` (no special tokens added).
    public func encode(_ text: String) throws -> [Int32] { try encode(text, context: nil) }

    /// Text of `ids`; special tokens are dropped.
    public func decode<S: Sequence>(_ ids: S) -> String where S.Element == Int32 { decodeIds(Array(ids)) }
}

extension CharTokenizer: TextTokenizer {
    public var bos: Int32 { CharTokenizer.bos }
    public var eos: Int32 { CharTokenizer.eos }
    public var pad: Int32 { CharTokenizer.pad }
    public var kind: String { "char" }
    public func decodeIds(_ ids: [Int32]) -> String { decode(ids) }

    /// `vocab.json` (token → id, sorted keys).
    public func checkpointFiles() throws -> [String: Data] {
        var data = try JSONSerialization.data(withJSONObject: vocab, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        return ["vocab.json": data]
    }
}
