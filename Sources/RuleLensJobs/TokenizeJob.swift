import Foundation
import RuleLensNumerics
import RuleLensTasks

/// `rulelens tokenize`: the ids (and token strings) a model folder's tokenizer gives texts.
public enum TokenizeJob {
    /// One tokenized text.
    public struct Line: Codable, Sendable {
        public var text: String
        public var ids: [Int32]
        /// Token strings as the vocabulary spells them (byte-level BPE: `Ġ` is a space).
        public var tokens: [String]
        /// `decode(ids)` (special tokens dropped).
        public var decoded: String
    }

    /// Tokenizes `texts` with the tokenizer stored in `folder` (`TokenizerFolder.load`).
    public static func run(folder: String, texts: [String]) throws -> [Line] {
        let tokenizer = try TokenizerFolder.load(folder: folder)
        return try texts.enumerated().map { i, text in
            let ids = try tokenizer.encode(text, context: "text \(i + 1)")
            let strings: [String]
            if let bpe = tokenizer as? BPETokenizer { strings = bpe.tokenStrings(ids) }
            else if let chars = tokenizer as? CharTokenizer { strings = ids.map { chars.tokens[Int($0)] } }
            else { strings = ids.map { tokenizer.decode([$0]) } }
            return Line(text: text, ids: ids, tokens: strings, decoded: tokenizer.decode(ids))
        }
    }

    /// Decodes comma-separated id lists (`"15,496,11"`) with the tokenizer stored in `folder`.
    public static func decode(folder: String, idLists: [String]) throws -> [Line] {
        guard !idLists.isEmpty else { return [] }
        let tokenizer = try TokenizerFolder.load(folder: folder)
        return try idLists.map { list in
            let ids = try list.split(separator: ",").map { part -> Int32 in
                guard let id = Int32(part.trimmingCharacters(in: .whitespaces)), id >= 0, Int(id) < tokenizer.count else {
                    throw RuleLensError("--decode \(list): \"\(part)\" is not an id of this tokenizer (0..<\(tokenizer.count))",
                                        fix: "pass comma-separated ids such as 15,496,11")
                }
                return id
            }
            let strings = (tokenizer as? BPETokenizer)?.tokenStrings(ids) ?? ids.map { tokenizer.decode([$0]) }
            return Line(text: "", ids: ids, tokens: strings, decoded: tokenizer.decode(ids))
        }
    }

    /// Reads texts from a JSON Lines file: each line a JSON string, or an object with a "text" field.
    public static func readTexts(jsonl path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("\(path) does not exist or cannot be read", fix: "check the path")
        }
        var texts: [String] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            if let s = object as? String { texts.append(s) }
            else if let o = object as? [String: Any], let s = o["text"] as? String { texts.append(s) }
            else {
                throw RuleLensError("line \(n + 1) of \(path) is neither a JSON string nor an object with a \"text\" string",
                                    fix: "write one text per line as \"…\" or {\"text\": \"…\"}")
            }
        }
        return texts
    }
}
