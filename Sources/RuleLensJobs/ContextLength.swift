import Foundation
import RuleLensTasks

/// The context a trainer needs for its data: when `--ctx` is not given, `train` and `vae train` take the longest
/// example's length instead of a fixed default that may refuse the data (syllogisms need about 90 positions).
public enum ContextLength {
    /// Positions the longest example of `files` takes as `[bos] + prompt + target + [eos]` in RuleLens's character
    /// tokens (nil when no file holds an example; an example the tokenizer refuses is left to the trainer's check,
    /// which names it).
    public static func longest(in files: [String], tokenizer: CharTokenizer = .standard) throws -> Int? {
        var longest: Int? = nil
        for file in files where FileManager.default.fileExists(atPath: file) {
            for e in try JSONL.readExamples(path: file) {
                guard let p = try? tokenizer.encode(e.prompt), let t = try? tokenizer.encode(e.target) else { continue }
                longest = max(longest ?? 0, p.count + t.count + 2)
            }
        }
        return longest
    }

    /// The line the trainers log when they derive the context.
    public static func derivedMessage(_ ctx: Int, files: [String]) -> String {
        "--ctx not given: using \(ctx) positions, the longest example ([bos] + prompt + target + [eos]) of "
            + files.map { ($0 as NSString).lastPathComponent }.joined(separator: " and ")
    }
}
