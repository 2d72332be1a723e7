import Foundation
import RuleLensNumerics

/// The Hugging Face tokenizer files written beside a checkpoint, so `AutoTokenizer.from_pretrained(dir)`,
/// `pipeline("text-generation", model: dir)` and TransformerLens's `TransformerBridge.boot_transformers(dir)` turn a
/// text into exactly the ids RuleLens feeds its model — `[bos] + encode(text)` — with no arguments and no glue.
///
/// Character vocabularies (`files(vocab:nCtx:modelType:)`) get a byte-level BPE `tokenizer.json`. Byte-level,
/// because transformers ≥ 5 builds some families' tokenizer classes with a fixed pipeline whatever the file says
/// (`Qwen2Tokenizer`: NFC, Qwen2's split regex, ByteLevel; only vocabulary, merges and post-processor come from the
/// file), and a raw `" "` token would then never match:
/// - each character is spelled in GPT-2's byte table (`" "` → `"Ġ"`, `"\n"` → `"Ċ"`, `"a"` → `"a"`) with its
///   `vocab.json` id. A character of several UTF-8 bytes is rebuilt from its bytes by merges that only ever join bytes
///   of one character (a merge's left side starts with a UTF-8 lead byte, so none spans two characters); those bytes
///   and partial characters take ids after the vocabulary and never come out of a text RuleLens can encode;
/// - pre-tokenizer and decoder `ByteLevel` (no regex, no prefix space), no normalizer;
/// - a `TemplateProcessing` post-processor that puts `<bos>` first, as RuleLens's model input has it, so the default
///   `tokenizer(text)` and `pipeline` see RuleLens's ids (`add_special_tokens=False` gives the bare text's ids).
/// A BPE tokenizer read from a `tokenizer.json` keeps its file, with the same post-processor for its bos token
/// (`bpeFiles(_:bosTokenID:modelType:nCtx:)`).
/// `tokenizer_config.json` names the class (`Qwen2Tokenizer` for qwen2 runs, which transformers picks for that model
/// type anyway; `PreTrainedTokenizerFast` otherwise), the special tokens, `add_bos_token` and `unk_token: null`.
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

    /// The byte-level vocabulary (table spelling → id) and merges of a character vocabulary (see the type's notes).
    static func byteLevelModel(vocab: [String: Int]) -> (vocab: [String: Int], merges: [[String]]) {
        var spelled: [String: Int] = [:]
        var merges: [[String]] = []
        var extra = Set<String>()       // single bytes and partial characters of multi-byte characters
        var seenMerges = Set<[String]>()
        for (token, id) in vocab {
            if specialTokens.contains(token) { spelled[token] = id; continue }
            let bytes = Array(token.utf8)
            spelled[ByteLevel.encode(bytes)] = id
            guard bytes.count > 1 else { continue }
            for b in bytes { extra.insert(ByteLevel.encode([b])) }
            for end in 2...bytes.count {
                let merge = [ByteLevel.encode(bytes[..<(end - 1)]), ByteLevel.encode([bytes[end - 1]])]
                if end < bytes.count { extra.insert(ByteLevel.encode(bytes[..<end])) }
                if seenMerges.insert(merge).inserted { merges.append(merge) }
            }
        }
        var next = (vocab.values.max() ?? -1) + 1
        for token in extra.sorted() where spelled[token] == nil {
            spelled[token] = next
            next += 1
        }
        // Shorter left sides first: a 3-byte character's first merge precedes the one that completes it.
        merges.sort { ($0[0].unicodeScalars.count, $0[0], $0[1]) < ($1[0].unicodeScalars.count, $1[0], $1[1]) }
        return (spelled, merges)
    }

    /// A `TemplateProcessing` post-processor that puts the token `bos` (id `bosID`) before every sequence.
    static func bosPostProcessor(bos: String, bosID: Int) -> [String: Any] {
        let first: [String: Any] = ["SpecialToken": ["id": bos, "type_id": 0]]
        return ["type": "TemplateProcessing",
                "single": [first, ["Sequence": ["id": "A", "type_id": 0]]],
                "pair": [first, ["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                "special_tokens": [bos: ["id": bos, "ids": [bosID], "tokens": [bos]]]]
    }

    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// The `tokenizer.json` content for a character vocabulary (token → id).
    public static func tokenizerJSON(vocab: [String: Int]) throws -> Data {
        let added: [[String: Any]] = specialTokens.map { token in
            ["id": vocab[token]!, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let (spelled, merges) = byteLevelModel(vocab: vocab)
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": spelled, "merges": merges,
        ]
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]
        let object: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": byteLevel, "decoder": byteLevel,
            "post_processor": bosPostProcessor(bos: "<bos>", bosID: vocab["<bos>"]!), "model": model,
        ]
        return try json(object)
    }

    /// The tokenizer class `tokenizer_config.json` names for a model type.
    static func tokenizerClass(modelType: String) -> String {
        modelType == "qwen2" ? "Qwen2Tokenizer" : "PreTrainedTokenizerFast"
    }

    /// The `tokenizer_config.json` content: the class for `modelType`, the special tokens, `<bos>` added in front.
    public static func tokenizerConfigJSON(nCtx: Int, modelType: String = "gpt2", bos: String = "<bos>", eos: String = "<eos>",
                                           pad: String = "<pad>", base: [String: Any] = [:]) throws -> Data {
        var object = base
        object["tokenizer_class"] = tokenizerClass(modelType: modelType)
        object["bos_token"] = bos
        object["eos_token"] = eos
        object["pad_token"] = pad
        object["unk_token"] = NSNull()          // else Qwen2Tokenizer adds an "<|endoftext|>" unk after the vocabulary
        object["add_bos_token"] = true
        object["add_eos_token"] = false
        object["model_max_length"] = nCtx
        object["clean_up_tokenization_spaces"] = false
        object["padding_side"] = object["padding_side"] ?? "right"
        object.removeValue(forKey: "auto_map")
        return try json(object)
    }

    /// The (file name, bytes) pairs to write beside `vocab.json`; empty when `vocab` is not a character vocabulary.
    public static func files(vocab: [String: Int], nCtx: Int, modelType: String = "gpt2") throws -> [(name: String, data: Data)] {
        guard isCharacterVocabulary(vocab) else { return [] }
        return [(tokenizerFile, try tokenizerJSON(vocab: vocab)),
                (tokenizerConfigFile, try tokenizerConfigJSON(nCtx: nCtx, modelType: modelType))]
    }

    /// A BPE tokenizer's files (as read from its folder) with `<bos>` put in front by their own post-processor:
    /// `tokenizer.json` gets the `TemplateProcessing` for the token of id `bosTokenID`, `tokenizer_config.json`
    /// names that token as `bos_token` (and the class for `modelType`). Files without a `tokenizer.json` (GPT-2's
    /// vocab.json + merges.txt) are returned as they are.
    public static func bpeFiles(_ files: [String: Data], bosTokenID: Int?, modelType: String, nCtx: Int) throws -> [String: Data] {
        guard let bosID = bosTokenID, let raw = files[tokenizerFile],
              var root = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any] else { return files }
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        let vocab = (root["model"] as? [String: Any])?["vocab"] as? [String: Any] ?? [:]
        guard let bos = added.first(where: { ($0["id"] as? NSNumber)?.intValue == bosID })?["content"] as? String
                ?? vocab.first(where: { ($0.value as? NSNumber)?.intValue == bosID })?.key else { return files }
        root["post_processor"] = bosPostProcessor(bos: bos, bosID: bosID)
        var out = files
        out[tokenizerFile] = try json(root)
        let base = files[tokenizerConfigFile].flatMap { (try? JSONSerialization.jsonObject(with: $0)) as? [String: Any] } ?? [:]
        func name(_ key: String) -> String? {
            if let s = base[key] as? String { return s }
            return (base[key] as? [String: Any])?["content"] as? String
        }
        let eos = name("eos_token") ?? bos
        out[tokenizerConfigFile] = try tokenizerConfigJSON(nCtx: nCtx, modelType: modelType, bos: bos, eos: eos, pad: name("pad_token") ?? eos,
                                                           base: base)
        return out
    }
}
