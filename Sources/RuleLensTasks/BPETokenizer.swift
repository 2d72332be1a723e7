import Foundation
import RuleLensNumerics

/// Byte-level BPE, as GPT-2, Qwen2/2.5 and Llama 3 tokenize: the same ids as Hugging Face `tokenizers`.
///
/// Encoding, in Hugging Face's order: split the text on added tokens (special tokens such as `<|endoftext|>`
/// become their ids as they are), normalize the rest (NFC where the tokenizer asks for it), split it into words
/// with the pre-tokenizer regex (`PreTokenizerPattern`), spell each word's UTF-8 bytes with the byte-level table
/// (`ByteLevel`), and merge adjacent symbols by merge rank (lowest rank first, leftmost first) until no merge applies.
/// Decoding joins the tokens' bytes and reads them as UTF-8 (invalid sequences become U+FFFD).
///
/// Build one with `TokenizerFolder.load(folder:)` (from `tokenizer.json`, or GPT-2's `vocab.json` + `merges.txt`).
public struct BPETokenizer: TextTokenizer {
    /// A token matched in the raw text before BPE (Hugging Face's `added_tokens`).
    public struct AddedToken: Sendable, Equatable {
        public var content: String
        public var id: Int32
        /// Special tokens are dropped by `decode`.
        public var special: Bool
        public var lstrip = false, rstrip = false, singleWord = false
        /// Matched after normalization (true) or on the raw text (false).
        public var normalized = false

        public init(content: String, id: Int32, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
                    singleWord: Bool = false, normalized: Bool = false) {
            self.content = content; self.id = id; self.special = special
            self.lstrip = lstrip; self.rstrip = rstrip; self.singleWord = singleWord; self.normalized = normalized
        }
    }

    /// One merge: the pair's rank (lower merges first) and the id of the merged token.
    struct Merge: Sendable { let rank: Int32; let id: Int32 }

    /// Token strings by id (byte-level spelling; added tokens as their content; "" where an id is unused).
    public let tokens: [String]
    let idOf: [String: Int32]
    let merges: [UInt64: Merge]
    /// The id of each single byte's token (-1 where the vocabulary lacks it).
    let byteIds: [Int32]
    public let pattern: PreTokenizerPattern
    public let addPrefixSpace: Bool
    public let nfc: Bool
    /// Llama 3: a word that is itself in the vocabulary becomes that token without merging.
    public let ignoreMerges: Bool
    public let addedTokens: [AddedToken]
    let unk: Int32?
    let specialIds: Set<Int32>
    public let bos: Int32, eos: Int32, pad: Int32
    /// The files this tokenizer was read from (name → bytes), saved again beside checkpoints.
    let files: [String: Data]

    public var count: Int { tokens.count }
    public var kind: String { "bpe" }
    public var mergeCount: Int { merges.count }

    /// Builds a tokenizer from its parts. `merges` are token-string pairs in rank order; every pair's
    /// concatenation must be in `vocab`. `bos`/`eos`/`pad` are token strings in the vocabulary or added tokens.
    public init(vocab: [String: Int], merges mergeList: [(String, String)], addedTokens: [AddedToken],
                pattern: PreTokenizerPattern, addPrefixSpace: Bool = false, nfc: Bool = false, ignoreMerges: Bool = false,
                unkToken: String? = nil, bos: String, eos: String, pad: String, files: [String: Data] = [:], source: String) throws {
        var size = 0
        for (_, id) in vocab { size = max(size, id + 1) }
        for t in addedTokens { size = max(size, Int(t.id) + 1) }
        guard size <= Int(Int32.max) else { throw RuleLensError("\(source) has an id above 2^31", fix: "use a tokenizer with ids below 2^31") }
        var strings = [String](repeating: "", count: size)
        var idOf: [String: Int32] = [:]
        idOf.reserveCapacity(vocab.count + addedTokens.count)
        for (token, id) in vocab {
            guard id >= 0 else {
                throw RuleLensError("\(source) gives token \"\(token)\" the negative id \(id)", fix: "repair or re-save the tokenizer")
            }
            strings[id] = token
            idOf[token] = Int32(id)
        }
        for t in addedTokens {
            guard t.id >= 0 else { throw RuleLensError("\(source) gives added token \"\(t.content)\" a negative id", fix: "repair or re-save the tokenizer") }
            strings[Int(t.id)] = t.content
            if idOf[t.content] == nil { idOf[t.content] = t.id }
        }
        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(mergeList.count)
        for (rank, pair) in mergeList.enumerated() {
            guard let a = idOf[pair.0], let b = idOf[pair.1], let merged = idOf[pair.0 + pair.1] else {
                throw RuleLensError("merge \(rank + 1) of \(source) (\"\(pair.0)\" \"\(pair.1)\") uses a token that is not in the vocabulary",
                                    fix: "the merges and the vocabulary come from different tokenizers; use the files saved together")
            }
            let key = Self.key(a, b)
            if table[key] == nil { table[key] = Merge(rank: Int32(rank), id: merged) }
        }
        func id(_ token: String, _ role: String) throws -> Int32 {
            guard let i = idOf[token] else {
                throw RuleLensError("the \(role) token \"\(token)\" of \(source) is not in its vocabulary",
                                    fix: "set \(role)_token in tokenizer_config.json to a token of the vocabulary (e.g. <|endoftext|>)")
            }
            return i
        }
        tokens = strings
        self.idOf = idOf
        merges = table
        byteIds = (0..<256).map { idOf[String(ByteLevel.charOfByte[$0])] ?? -1 }
        self.pattern = pattern
        self.addPrefixSpace = addPrefixSpace
        self.nfc = nfc
        self.ignoreMerges = ignoreMerges
        // Longest first, so that a token that is a prefix of another never shadows it.
        self.addedTokens = addedTokens.sorted { ($0.content.unicodeScalars.count, $1.id) > ($1.content.unicodeScalars.count, $0.id) }
        unk = try unkToken.map { try id($0, "unk") }
        specialIds = Set(addedTokens.filter(\.special).map(\.id))
        self.bos = try id(bos, "bos")
        self.eos = try id(eos, "eos")
        self.pad = try id(pad, "pad")
        self.files = files
    }

    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// The id of token string `token` (byte-level spelling, or an added token's content), or nil.
    public func id(of token: String) -> Int32? { idOf[token] }

    /// Whether `id` is a special token (dropped by `decode`).
    public func isSpecial(_ id: Int32) -> Bool { specialIds.contains(id) }

    // MARK: Encoding

    public func encode(_ text: String, context: String?) throws -> [Int32] {
        var out: [Int32] = []
        for piece in split(Array(text.unicodeScalars), on: addedTokens.filter { !$0.normalized }) {
            switch piece {
            case .token(let id): out.append(id)
            case .text(let raw):
                let normalized = nfc ? Array(String(String.UnicodeScalarView(raw)).precomposedStringWithCanonicalMapping.unicodeScalars) : raw
                for inner in split(normalized, on: addedTokens.filter(\.normalized)) {
                    switch inner {
                    case .token(let id): out.append(id)
                    case .text(let t): try encodeOrdinary(t, into: &out, context: context)
                    }
                }
            }
        }
        return out
    }

    enum Piece { case text([Unicode.Scalar]), token(Int32) }

    /// Splits `s` on the leftmost-longest occurrences of `candidates` (with their lstrip/rstrip/single-word rules).
    func split(_ s: [Unicode.Scalar], on candidates: [AddedToken]) -> [Piece] {
        guard !candidates.isEmpty, !s.isEmpty else { return s.isEmpty ? [] : [.text(s)] }
        let contents = candidates.map { Array($0.content.unicodeScalars) }
        func isWordChar(_ u: Unicode.Scalar) -> Bool { u == "_" || u.properties.isAlphabetic || u.properties.numericType != nil }
        var pieces: [Piece] = []
        var textStart = 0
        var i = 0
        while i < s.count {
            var matched: (index: Int, length: Int)? = nil
            for (k, c) in contents.enumerated() where !c.isEmpty && c[0] == s[i] && i + c.count <= s.count {
                if s[i..<(i + c.count)].elementsEqual(c) {
                    if candidates[k].singleWord {
                        if i > 0 && isWordChar(s[i - 1]) { continue }
                        if i + c.count < s.count && isWordChar(s[i + c.count]) { continue }
                    }
                    matched = (k, c.count)
                    break   // candidates are sorted longest first
                }
            }
            guard let m = matched else { i += 1; continue }
            var start = i, end = i + m.length
            if candidates[m.index].lstrip { while start > textStart && s[start - 1].properties.isWhitespace { start -= 1 } }
            if candidates[m.index].rstrip { while end < s.count && s[end].properties.isWhitespace { end += 1 } }
            if start > textStart { pieces.append(.text(Array(s[textStart..<start]))) }
            pieces.append(.token(candidates[m.index].id))
            textStart = end
            i = end
        }
        if textStart < s.count { pieces.append(.text(Array(s[textStart...]))) }
        return pieces
    }

    /// Pre-tokenizes and BPE-encodes text that holds no added token.
    func encodeOrdinary(_ scalars: [Unicode.Scalar], into out: inout [Int32], context: String?) throws {
        var s = scalars
        if addPrefixSpace, let first = s.first, first != " " { s.insert(" ", at: 0) }
        for range in pattern.split(s) {
            var bytes: [UInt8] = []
            for u in s[range] { bytes.append(contentsOf: UTF8.encode(u)!) }
            try encodeWord(bytes, into: &out, context: context)
        }
    }

    /// BPE over one pre-tokenized word (its UTF-8 bytes).
    func encodeWord(_ bytes: [UInt8], into out: inout [Int32], context: String?) throws {
        if ignoreMerges, let whole = idOf[ByteLevel.encode(bytes)] { out.append(whole); return }
        var c = [Int32]()
        c.reserveCapacity(bytes.count)
        for b in bytes {
            let id = byteIds[Int(b)]
            if id >= 0 { c.append(id); continue }
            if let unk { c.append(unk); continue }
            let whereText = context.map { " in \($0)" } ?? ""
            throw RuleLensError("byte 0x\(String(b, radix: 16, uppercase: true))\(whereText) has no token in this tokenizer's vocabulary (it lacks the byte-level alphabet)",
                                fix: "remove the characters that need that byte, or use a tokenizer trained with the full byte-level alphabet")
        }
        let n = c.count
        guard n > 1 else { out.append(contentsOf: c); return }
        // Symbols as a doubly linked list over positions; a heap of candidate merges ordered by (rank, position).
        var next = Array(1...n); next[n - 1] = -1
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for p in 0..<(n - 1) { if let m = merges[Self.key(c[p], c[p + 1])] { heap.push(m.rank, p, m.id) } }
        while let top = heap.pop() {
            let p = top.pos
            guard alive[p], next[p] >= 0 else { continue }
            let r = next[p]
            guard let m = merges[Self.key(c[p], c[r])], m.id == top.id else { continue }   // stale entry
            c[p] = m.id
            alive[r] = false
            next[p] = next[r]
            if next[r] >= 0 { prev[next[r]] = p }
            if prev[p] >= 0, let left = merges[Self.key(c[prev[p]], c[p])] { heap.push(left.rank, prev[p], left.id) }
            if next[p] >= 0, let right = merges[Self.key(c[p], c[next[p]])] { heap.push(right.rank, p, right.id) }
        }
        var p = 0
        while p >= 0 { out.append(c[p]); p = next[p] }
    }

    // MARK: Decoding

    /// Text of `ids`: special tokens dropped, the rest's bytes joined and read as UTF-8 (invalid → U+FFFD).
    /// Ids outside the vocabulary are skipped.
    public func decodeIds(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count && !specialIds.contains(id) {
            let token = tokens[Int(id)]
            bytes.append(contentsOf: ByteLevel.decode(token) ?? Array(token.utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The token strings of `ids` (byte-level spelling), for display.
    public func tokenStrings(_ ids: [Int32]) -> [String] {
        ids.map { $0 >= 0 && Int($0) < tokens.count ? tokens[Int($0)] : "<id \($0)>" }
    }

    public func checkpointFiles() throws -> [String: Data] { files }
}

/// A binary min-heap of merge candidates ordered by (rank, position), as Hugging Face's BPE pops them.
struct MergeHeap {
    private var items: [(rank: Int32, pos: Int, id: Int32)] = []

    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].rank != items[b].rank ? items[a].rank < items[b].rank : items[a].pos < items[b].pos
    }

    mutating func push(_ rank: Int32, _ pos: Int, _ id: Int32) {
        items.append((rank, pos, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(i, parent) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (rank: Int32, pos: Int, id: Int32)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count && less(l, smallest) { smallest = l }
                if r < items.count && less(r, smallest) { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return top
    }
}
