import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensNumerics

/// `rulelens tokenize`: shows how a model folder's tokenizer splits texts (and decodes ids).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode texts (or decode ids) with a model folder's tokenizer (tokenizer.json, vocab.json + merges.txt, or RuleLens's characters).")

    @Option(help: "Model or tokenizer folder.") var tokenizer: String
    @Option(help: "A text to encode (repeatable).") var text: [String] = []
    @Option(help: "JSON Lines file of texts (a JSON string, or {\"text\": …}, per line).") var jsonl: String?
    @Option(help: "Comma-separated ids to decode (repeatable).") var decode: [String] = []
    @Flag(help: "Print one JSON object per text: text, ids, tokens, decoded.") var json = false

    func run() throws {
        var texts = text
        if let jsonl { texts += try TokenizeJob.readTexts(jsonl: jsonl) }
        guard !texts.isEmpty || !decode.isEmpty else {
            throw RuleLensError("nothing to tokenize", fix: "pass --text \"…\", --jsonl FILE or --decode 1,2,3")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = try TokenizeJob.run(folder: tokenizer, texts: texts)
        lines += try TokenizeJob.decode(folder: tokenizer, idLists: decode)
        for line in lines {
            if json { print(String(decoding: try encoder.encode(line), as: UTF8.self)) }
            else { print("\(line.ids.count) tokens: \(line.ids.map(String.init).joined(separator: " "))  \(line.tokens)  → \(line.decoded.debugDescription)") }
        }
    }
}
