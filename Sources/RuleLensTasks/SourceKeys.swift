/// Where each target character should be retrieved from: the prompt positions that are its "keys" in a key–query–value
/// reading of attention. Positions are character (= token) indices into the prompt, 0-based; the model's input has a
/// leading bos, so prompt position i is token i + 1. An empty list marks a target character with no source (a fixed
/// word, punctuation, or a value computed from earlier target text rather than read from the prompt).
///
/// - Column addition (direct format, and the final answer line of the scratchpad and rule formats): the answer digit at
///   place p comes from the digits of a and b at place p; a carry-out digit from the top digits of both.
/// - Scratchpad steps: a step line's new digit and carry come from that step's column; the operand digits still to be
///   processed are copies of the prompt's.
/// - Other operand tasks (linear regression, modular addition, chickens and rabbits): every answer digit comes from
///   every operand digit (the answer is not column-aligned).
/// - Study 2 tasks: a conclusion word that is copied from the premises (a syllogism's terms, an explanation's content
///   words, a derivation's variables) has every premise occurrence of that word as its source.
public enum SourceKeys {
    /// Sources of a column-aligned sum: `answer` occupies target characters `answerStart…`; the operands' digits sit at
    /// prompt positions `aStart…` and `bStart…` (most significant first).
    public static func columns(targetLength: Int, answerStart: Int, answer: String, aStart: Int, aDigits: Int,
                               bStart: Int, bDigits: Int) -> [[Int]] {
        var sources = [[Int]](repeating: [], count: targetLength)
        let n = answer.count
        for (k, _) in answer.enumerated() {
            let place = n - 1 - k                                    // 0 = units
            var keys: [Int] = []
            if place < aDigits { keys.append(aStart + aDigits - 1 - place) }
            if place < bDigits { keys.append(bStart + bDigits - 1 - place) }
            if keys.isEmpty { keys = [aStart, bStart] }              // a carry-out digit: the top digits of both
            sources[answerStart + k] = keys
        }
        return sources
    }

    /// Every answer character that is a digit gets every operand digit; other characters get none.
    public static func allOperandDigits(target: String, operandPositions: [Int]) -> [[Int]] {
        target.map { $0.isNumber ? operandPositions : [] }
    }

    /// Copy sources: each target character inside a word (a maximal run of letters/digits) that `isCopied` accepts and
    /// that also occurs in the prompt as a whole word gets the prompt positions of the same character in every such
    /// occurrence. Everything else gets none.
    public static func copiedWords(prompt: String, target: String, isCopied: (String) -> Bool) -> [[Int]] {
        let promptWords = words(in: prompt)
        var sources = [[Int]](repeating: [], count: target.count)
        for word in words(in: target) where isCopied(word.text) {
            let occurrences = promptWords.filter { $0.text == word.text }
            for offset in 0..<word.text.count {
                sources[word.start + offset] = occurrences.map { $0.start + offset }
            }
        }
        return sources
    }

    /// The connective words of explanatory steps: they belong to the template, not to the premises' content.
    public static let explanatoryFixedWords: Set<String> = ["a", "an", "is", "kind", "of", "if", "something", "then", "it", "and"]

    /// Maximal runs of letters and digits with their character offsets.
    static func words(in text: String) -> [(text: String, start: Int)] {
        var out: [(String, Int)] = []
        var current = "", start = 0
        for (i, c) in text.enumerated() {
            if c.isLetter || c.isNumber {
                if current.isEmpty { start = i }
                current.append(c)
            } else if !current.isEmpty {
                out.append((current, start)); current = ""
            }
        }
        if !current.isEmpty { out.append((current, start)) }
        return out
    }
}
