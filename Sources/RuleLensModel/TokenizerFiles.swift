import Foundation
import RuleLensNumerics

/// The Hugging Face tokenizer files written beside `vocab.json`, so the Python tools open a RuleLens checkpoint
/// as it is: `AutoTokenizer.from_pretrained(dir)` encodes text to RuleLens's ids, and TransformerLens's
/// `TransformerBridge.boot_transformers(dir)` finds a tokenizer without being handed one.
///
/// - `tokenizer.json` — a `tokenizers` file whose model is a BPE with the character vocabulary and no merges:
///   every character is its own token, exactly as `CharTokenizer.encode`. No pre-tokenizer and no normalizer
///   (spaces and newlines are ordinary tokens); `<pad>`, `<bos>`, `<eos>` are special added tokens; the `Fuse`
///   decoder joins tokens without separators. Nothing is added around the text (no post-processor), so
///   `tokenizer(prompt)` gives the prompt's ids and the caller prepends `<bos>` (TransformerLens's
///   `to_tokens` does, as RuleLens's model input `[bos] + prompt` needs).
/// - `tokenizer_config.json` — `PreTrainedTokenizerFast` with the special tokens and `model_max_length` = n_ctx.
public enum TokenizerFiles {
    public static let tokenizerFile = "tokenizer.json"
    public static let tokenizerConfigFile = "tokenizer_config.json"
    static let specialTokens = ["<pad>", "<bos>", "<eos>"]

    /// Whether `vocab` is a RuleLens character vocabulary: `<pad>`, `<bos>`, `<eos>` at ids 0, 1, 2, ids dense,
    /// every other token one Unicode scalar. Only such vocabularies get tokenizer files (a BPE vocab.json from
    /// a real GPT-2 would need its merges).
    public static func isCharacterVocabulary(_ vocab: [String: Int]) -> Bool {
        guard vocab.count > 3 else { return false }
        for (i, token) in specialTokens.enumerated() where vocab[token] != i { return false }
        let ids = Set(vocab.values)
        guard ids.count == vocab.count, ids.min() == 0, ids.max() == vocab.count - 1 else { return false }
        return vocab.keys.allSatisfy { specialTokens.contains($0) || $0.unicodeScalars.count == 1 }
    }

    /// The `tokenizer.json` content for a character vocabulary (token → id).
    public static func tokenizerJSON(vocab: [String: Int]) throws -> Data {
        let added: [[String: Any]] = specialTokens.map { token in
            ["id": vocab[token]!, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": [String](),
        ]
        let object: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": NSNull(), "post_processor": NSNull(),
            "decoder": ["type": "Fuse"], "model": model,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// The `tokenizer_config.json` content: a fast tokenizer with RuleLens's special tokens.
    public static func tokenizerConfigJSON(nCtx: Int) throws -> Data {
        let object: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
            "model_max_length": nCtx,
            "clean_up_tokenization_spaces": false,
            "padding_side": "right",
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// The (file name, bytes) pairs to write beside `vocab.json`; empty when `vocab` is not a character vocabulary.
    public static func files(vocab: [String: Int], nCtx: Int) throws -> [(name: String, data: Data)] {
        guard isCharacterVocabulary(vocab) else { return [] }
        return [(tokenizerFile, try tokenizerJSON(vocab: vocab)), (tokenizerConfigFile, try tokenizerConfigJSON(nCtx: nCtx))]
    }
}
