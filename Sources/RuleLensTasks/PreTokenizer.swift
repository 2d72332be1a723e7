/// The regex pre-tokenizers of byte-level BPE models, as hand-written matchers over Unicode scalars.
///
/// Hugging Face `tokenizers` splits text with a regex before BPE; each match becomes one "word" that BPE never
/// merges across. RuleLens recognises the patterns by their exact text and runs an equivalent matcher (same
/// leftmost-first alternation, same greedy runs and backtracking), which is exact and much faster than a general
/// regex engine. Character classes follow the regex engine: `\p{L}` letters (Lu Ll Lt Lm Lo), `\p{N}` numbers
/// (Nd Nl No), `\s` the Unicode White_Space property.
public enum PreTokenizerPattern: Sendable, Equatable {
    /// GPT-2 (and the `ByteLevel` pre-tokenizer with `use_regex: true`):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Qwen2 / Qwen2.5 (`maxDigits` 1) and Llama 3 (`maxDigits` 3):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case qwen2(maxDigits: Int)

    public static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    public static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern whose regex text is `regex`, or nil.
    public init?(regex: String) {
        switch regex {
        case Self.gpt2Regex: self = .gpt2
        case Self.qwen2Regex: self = .qwen2(maxDigits: 1)
        case Self.llama3Regex: self = .qwen2(maxDigits: 3)
        default: return nil
        }
    }

    /// Splits `s` into consecutive pieces (every scalar lands in exactly one piece; the patterns match everything).
    public func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = s.map(ScalarClass.init)
        var pieces: [Range<Int>] = []
        var i = 0
        while i < s.count {
            let length: Int
            switch self {
            case .gpt2: length = Self.matchGPT2(s, classes, at: i)
            case .qwen2(let maxDigits): length = Self.matchQwen2(s, classes, at: i, maxDigits: maxDigits)
            }
            pieces.append(i..<(i + length))
            i += length
        }
        return pieces
    }

    /// Letter, number, whitespace or anything else (`[^\s\p{L}\p{N}]`).
    enum ScalarClass {
        case letter, number, space, other
        init(_ u: Unicode.Scalar) {
            if u.properties.isWhitespace { self = .space; return }
            switch u.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
            case .decimalNumber, .letterNumber, .otherNumber: self = .number
            default: self = .other
            }
        }
    }

    /// End of the run of class `c` starting at `i`.
    static func runEnd(_ classes: [ScalarClass], from i: Int, _ c: ScalarClass) -> Int {
        var j = i
        while j < classes.count && classes[j] == c { j += 1 }
        return j
    }

    /// Length of the contraction `'s|'t|'re|'ve|'m|'ll|'d` at `i`, or 0.
    static func contraction(_ s: [Unicode.Scalar], at i: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.count else { return 0 }
        func lower(_ u: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return u }
            if u == "\u{17F}" { return "s" }   // LATIN SMALL LETTER LONG S case-folds to s
            if u == "\u{212A}" { return "k" }  // KELVIN SIGN (never part of a contraction; kept for completeness)
            return ("A"..."Z").contains(u) ? Unicode.Scalar(u.value + 32)! : u
        }
        let a = lower(s[i + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return 2 }
        guard i + 2 < s.count else { return 0 }
        let b = lower(s[i + 2])
        if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return 3 }
        return 0
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: the whole run at the end of the text, else the run but its last
    /// scalar (which then joins the next word), else one scalar.
    static func whitespace(_ classes: [ScalarClass], at i: Int) -> Int {
        let end = runEnd(classes, from: i, .space)
        if end == classes.count { return end - i }
        return end - i >= 2 ? end - i - 1 : 1
    }

    static func matchGPT2(_ s: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int) -> Int {
        let n = contraction(s, at: i, caseInsensitive: false)
        if n > 0 { return n }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        if s[i] == " ", i + 1 < s.count, classes[i + 1] != .space {
            return runEnd(classes, from: i + 1, classes[i + 1]) - i
        }
        if classes[i] != .space { return runEnd(classes, from: i, classes[i]) - i }
        return whitespace(classes, at: i)
    }

    static func matchQwen2(_ s: [Unicode.Scalar], _ classes: [ScalarClass], at i: Int, maxDigits: Int) -> Int {
        let n = contraction(s, at: i, caseInsensitive: true)
        if n > 0 { return n }
        let c = classes[i]
        let isNewline = s[i] == "\r" || s[i] == "\n"
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if c == .letter { return runEnd(classes, from: i, .letter) - i }
        if c != .number, !isNewline, i + 1 < s.count, classes[i + 1] == .letter {
            return runEnd(classes, from: i + 1, .letter) - i
        }
        // `\p{N}{1,maxDigits}`
        if c == .number { return min(maxDigits, runEnd(classes, from: i, .number) - i) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var otherStart: Int? = nil
        if c == .other { otherStart = i } else if s[i] == " ", i + 1 < s.count, classes[i + 1] == .other { otherStart = i + 1 }
        if let start = otherStart {
            var j = runEnd(classes, from: start, .other)
            while j < s.count && (s[j] == "\r" || s[j] == "\n") { j += 1 }
            return j - i
        }
        // `\s*[\r\n]+`: through the last \r or \n of the whitespace run.
        let end = runEnd(classes, from: i, .space)
        var last = end - 1
        while last >= i && s[last] != "\r" && s[last] != "\n" { last -= 1 }
        if last >= i { return last + 1 - i }
        return whitespace(classes, at: i)
    }
}
