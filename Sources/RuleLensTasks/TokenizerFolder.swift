import Foundation
import RuleLensNumerics

/// Reading the tokenizer a model folder carries.
///
/// In order of preference:
/// 1. `vocab.json` holding RuleLens's character vocabulary (without `merges.txt`): `CharTokenizer` (RuleLens
///    checkpoints also carry a merge-free `tokenizer.json` for Python tools, which spells the same ids);
/// 2. `tokenizer.json` (Hugging Face `tokenizers`): byte-level BPE with GPT-2's, Qwen2's or Llama 3's pre-tokenizer;
/// 3. `vocab.json` + `merges.txt` (GPT-2's original files);
/// 4. nothing: the standard character vocabulary.
/// `tokenizer_config.json` names the bos/eos/pad tokens (`bos_token`, `eos_token`, `pad_token`); without it,
/// or where it leaves one unset, RuleLens uses `<|endoftext|>` (GPT-2 and Qwen2's end-of-text token) for all three.
public enum TokenizerFolder {
    public static let tokenizerJSON = "tokenizer.json"
    public static let tokenizerConfig = "tokenizer_config.json"
    public static let vocabJSON = "vocab.json"
    public static let mergesTXT = "merges.txt"

    /// The tokenizer stored in `folder` (see the type's documentation for the order).
    public static func load(folder: String) throws -> any TextTokenizer {
        let fm = FileManager.default
        let path = { (name: String) in folder + "/" + name }
        let hasJSON = fm.fileExists(atPath: path(tokenizerJSON)), hasMerges = fm.fileExists(atPath: path(mergesTXT))
        if fm.fileExists(atPath: path(vocabJSON)) && !hasMerges {
            let vocab = try readVocab(path(vocabJSON))
            do { return try CharTokenizer(vocab: vocab) } catch let error as RuleLensError {
                if !hasJSON {
                    throw RuleLensError("\(path(vocabJSON)) is neither a RuleLens character vocabulary (\(error.problem)) nor part of a BPE tokenizer (there is no merges.txt or tokenizer.json beside it)",
                                        fix: "copy the model's tokenizer.json (or merges.txt) into \(folder)")
                }
            }
        }
        if hasJSON { return try readTokenizerJSON(folder: folder) }
        if hasMerges { return try readVocabMerges(folder: folder) }
        return CharTokenizer.standard
    }

    /// Reads `vocab.json` (token → id).
    static func readVocab(_ path: String) throws -> [String: Int] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("\(path) cannot be read", fix: "check that the file exists and is readable")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw RuleLensError("\(path) is not a JSON object (token → id)", fix: "re-save the tokenizer, or delete vocab.json")
        }
        return try ids(dict, path: path)
    }

    static func ids(_ dict: [String: Any], path: String) throws -> [String: Int] {
        var v: [String: Int] = [:]
        v.reserveCapacity(dict.count)
        for (token, id) in dict {
            guard let n = id as? NSNumber else {
                throw RuleLensError("\(path) maps \"\(token)\" to a non-integer", fix: "re-save the tokenizer")
            }
            v[token] = n.intValue
        }
        return v
    }

    static func data(_ path: String) throws -> Data {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("\(path) cannot be read", fix: "check that the file exists and is readable")
        }
        return d
    }

    /// bos/eos/pad token strings from `tokenizer_config.json` (each a string, an object with "content", or null).
    static func specialTokenNames(folder: String, known: (String) -> Bool) throws -> (bos: String, eos: String, pad: String, file: Data?) {
        let path = folder + "/" + tokenizerConfig
        var names: [String: String] = [:]
        var file: Data? = nil
        if FileManager.default.fileExists(atPath: path) {
            let d = try data(path)
            file = d
            guard let object = try? JSONSerialization.jsonObject(with: d), let dict = object as? [String: Any] else {
                throw RuleLensError("\(path) is not a JSON object", fix: "repair it, or delete it (then <|endoftext|> frames every example)")
            }
            for key in ["bos_token", "eos_token", "pad_token"] {
                if let s = dict[key] as? String { names[key] = s }
                else if let o = dict[key] as? [String: Any], let s = o["content"] as? String { names[key] = s }
            }
        }
        let fallback = "<|endoftext|>"
        guard let eos = names["eos_token"] ?? (known(fallback) ? fallback : nil) else {
            throw RuleLensError("the tokenizer in \(folder) names no eos token and has no <|endoftext|>",
                                fix: "add \"eos_token\": \"…\" (the token that ends a text) to \(path)")
        }
        return (names["bos_token"] ?? eos, eos, names["pad_token"] ?? eos, file)
    }

    /// GPT-2's `vocab.json` + `merges.txt` (first line `#version: …`, then one `left right` pair per line).
    public static func readVocabMerges(folder: String) throws -> BPETokenizer {
        let vocabPath = folder + "/" + vocabJSON, mergesPath = folder + "/" + mergesTXT
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw RuleLensError("\(folder) has \(mergesTXT) but no \(vocabJSON)", fix: "copy the tokenizer's vocab.json beside merges.txt")
        }
        let vocab = try readVocab(vocabPath)
        let mergesData = try data(mergesPath)
        var merges: [(String, String)] = []
        for (n, line) in String(decoding: mergesData, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw RuleLensError("line \(n + 1) of \(mergesPath) is not two tokens separated by one space", fix: "use the merges.txt saved with the tokenizer")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let special = vocab["<|endoftext|>"].map { [BPETokenizer.AddedToken(content: "<|endoftext|>", id: Int32($0), special: true)] } ?? []
        let names = try specialTokenNames(folder: folder) { vocab[$0] != nil }
        var files = [vocabJSON: try data(vocabPath), mergesTXT: mergesData]
        if let f = names.file { files[tokenizerConfig] = f }
        return try BPETokenizer(vocab: vocab, merges: merges, addedTokens: special, pattern: .gpt2,
                                bos: names.bos, eos: names.eos, pad: names.pad, files: files, source: mergesPath)
    }

    /// A Hugging Face `tokenizer.json` with a byte-level BPE model.
    public static func readTokenizerJSON(folder: String) throws -> BPETokenizer {
        let path = folder + "/" + tokenizerJSON
        let raw = try data(path)
        guard let object = try? JSONSerialization.jsonObject(with: raw), let root = object as? [String: Any] else {
            throw RuleLensError("\(path) is not a JSON object", fix: "re-save the tokenizer (tokenizer.save(path) or save_pretrained)")
        }
        func unsupported(_ what: String) -> RuleLensError {
            RuleLensError("\(path): \(what); RuleLens reads byte-level BPE tokenizers (GPT-2, Qwen2/2.5, Llama 3 style)",
                          fix: "use a model whose tokenizer.json has a BPE model with a ByteLevel pre-tokenizer and decoder")
        }
        guard let model = root["model"] as? [String: Any] else { throw unsupported("there is no \"model\" object") }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw unsupported("the model type is \(type)") }
        if (model["byte_fallback"] as? Bool) == true {
            throw unsupported("the BPE model uses byte_fallback (a SentencePiece-style tokenizer, e.g. Llama 2 or Mistral)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key] as? String, !s.isEmpty { throw unsupported("the BPE model sets \(key) \"\(s)\"") }
        }
        if let dropout = model["dropout"] as? NSNumber, dropout.doubleValue > 0 {
            throw unsupported("the BPE model sets dropout \(dropout) (random merges)")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else { throw unsupported("the BPE model has no vocab object") }
        let vocab = try ids(vocabObject, path: path)
        var merges: [(String, String)] = []
        for (n, m) in (model["merges"] as? [Any] ?? []).enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw unsupported("merge \(n + 1) (\"\(s)\") is not two tokens separated by one space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw unsupported("merge \(n + 1) is neither \"a b\" nor [a, b]")
            }
        }
        var added: [BPETokenizer.AddedToken] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.intValue else {
                throw unsupported("an added token lacks content or id")
            }
            added.append(BPETokenizer.AddedToken(content: content, id: Int32(id), special: entry["special"] as? Bool ?? false,
                                                 lstrip: entry["lstrip"] as? Bool ?? false, rstrip: entry["rstrip"] as? Bool ?? false,
                                                 singleWord: entry["single_word"] as? Bool ?? false,
                                                 normalized: entry["normalized"] as? Bool ?? false))
        }
        // Normalizer: none, or NFC (alone or as the only member of a Sequence).
        var nfc = false
        if let normalizer = root["normalizer"] as? [String: Any] {
            var parts = [normalizer]
            if normalizer["type"] as? String == "Sequence" { parts = normalizer["normalizers"] as? [[String: Any]] ?? [] }
            for p in parts {
                guard p["type"] as? String == "NFC" else { throw unsupported("the normalizer \(p["type"] as? String ?? "?") is not supported (only NFC is)") }
                nfc = true
            }
        }
        // Pre-tokenizer: ByteLevel(use_regex: true) = GPT-2's regex, or Sequence[Split(known regex), ByteLevel(use_regex: false)].
        guard let pre = root["pre_tokenizer"] as? [String: Any] else { throw unsupported("there is no pre_tokenizer") }
        var pattern: PreTokenizerPattern? = nil
        var byteLevel: [String: Any]? = nil
        let steps = pre["type"] as? String == "Sequence" ? (pre["pretokenizers"] as? [[String: Any]] ?? []) : [pre]
        for step in steps {
            switch step["type"] as? String {
            case "ByteLevel":
                guard byteLevel == nil else { throw unsupported("the pre-tokenizer has two ByteLevel steps") }
                byteLevel = step
                if step["use_regex"] as? Bool ?? true {
                    guard pattern == nil else { throw unsupported("the pre-tokenizer splits with two regexes") }
                    pattern = .gpt2
                }
            case "Split":
                guard pattern == nil, byteLevel == nil else { throw unsupported("the pre-tokenizer's Split is not the first step") }
                guard let p = step["pattern"] as? [String: Any], let regex = p["Regex"] as? String else {
                    throw unsupported("the pre-tokenizer splits on a plain string, not a regex")
                }
                guard (step["behavior"] as? String ?? "Isolated") == "Isolated", (step["invert"] as? Bool ?? false) == false else {
                    throw unsupported("the pre-tokenizer's Split uses behavior \(step["behavior"] as? String ?? "?") / invert")
                }
                guard let known = PreTokenizerPattern(regex: regex) else {
                    throw unsupported("the pre-tokenizer regex \(regex) is not one RuleLens knows (GPT-2's, Qwen2's or Llama 3's)")
                }
                pattern = known
            default:
                throw unsupported("the pre-tokenizer step \(step["type"] as? String ?? "?") is not supported")
            }
        }
        guard let pattern, let byteLevel else { throw unsupported("the pre-tokenizer is not byte-level") }
        if let decoder = root["decoder"] as? [String: Any], decoder["type"] as? String != "ByteLevel" {
            throw unsupported("the decoder is \(decoder["type"] as? String ?? "?"), not ByteLevel")
        }
        let known: (String) -> Bool = { name in vocab[name] != nil || added.contains { $0.content == name } }
        let names = try specialTokenNames(folder: folder, known: known)
        var files = [tokenizerJSON: raw]
        if let f = names.file { files[tokenizerConfig] = f }
        return try BPETokenizer(vocab: vocab, merges: merges, addedTokens: added, pattern: pattern,
                                addPrefixSpace: byteLevel["add_prefix_space"] as? Bool ?? false, nfc: nfc,
                                ignoreMerges: model["ignore_merges"] as? Bool ?? false,
                                unkToken: model["unk_token"] as? String,
                                bos: names.bos, eos: names.eos, pad: names.pad, files: files, source: path)
    }
}
