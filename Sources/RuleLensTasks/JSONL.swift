import Foundation
import RuleLensNumerics

/// Reading and writing example files, one JSON object per line.
public enum JSONL {
    /// Reads examples from `path`. Errors name the file and the 1-based line number.
    public static func readExamples(path: String) throws -> [Example] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuleLensError("data file \(path) does not exist",
                                fix: "check the path, or generate data with `rulelens data generate --out DIR`")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleLensError("data file \(path) cannot be read", fix: "check its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuleLensError("data file \(path) is not UTF-8 text", fix: "save it as UTF-8 JSON Lines")
        }
        let decoder = JSONDecoder()
        var out: [Example] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so CRLF files (Windows editors, pandas on Windows) are split on it too.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(trimmed.utf8))
            } catch {
                throw RuleLensError("line \(lineNumber) of \(path) is not valid JSON",
                                    fix: "each line must be one JSON object such as {\"prompt\": \"1+2=\", \"target\": \"3\"}")
            }
            guard let dict = object as? [String: Any] else {
                throw RuleLensError("line \(lineNumber) of \(path) is JSON but not an object",
                                    fix: "each line must be one JSON object such as {\"prompt\": \"1+2=\", \"target\": \"3\"}")
            }
            for key in ["prompt", "target"] where !(dict[key] is String) {
                throw RuleLensError("line \(lineNumber) of \(path) has no string field \"\(key)\"",
                                    fix: "every line needs string fields \"prompt\" and \"target\"")
            }
            do {
                var example = try decoder.decode(Example.self, from: Data(trimmed.utf8))
                if example.id == nil { example.id = out.count }
                out.append(example)
            } catch {
                throw RuleLensError("line \(lineNumber) of \(path) has a field of the wrong type (\(error))",
                                    fix: "prompt, target, answer and rule are strings; id, rule_id, a and b are integers")
            }
        }
        if out.isEmpty {
            throw RuleLensError("data file \(path) holds no examples", fix: "give a JSONL file with at least one line")
        }
        return out
    }

    /// Encodes examples as JSONL with sorted keys, so the same examples always give the same bytes.
    public static func encode(_ examples: [Example]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for e in examples {
            data.append(try encoder.encode(e))
            data.append(0x0A)
        }
        return data
    }

    /// Writes examples to `path` atomically (temporary file, then rename).
    public static func writeExamples(_ examples: [Example], to path: String) throws {
        try AtomicFile.write(try encode(examples), to: path)
    }
}
