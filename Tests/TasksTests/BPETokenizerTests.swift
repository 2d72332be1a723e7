import XCTest
@testable import RuleLensTasks
import RuleLensNumerics

/// Byte-level BPE on hand-built vocabularies (the interop test against Hugging Face `tokenizers` is
/// Tests/Python/test_bpe_tokenizer.py): merge order, pre-tokenizer pieces, added tokens, errors.
final class BPETokenizerTests: XCTestCase {
    /// A vocabulary of all 256 byte tokens plus `merged`, with `merges` in rank order.
    func tokenizer(merges: [(String, String)], pattern: PreTokenizerPattern = .gpt2, added: [BPETokenizer.AddedToken] = [],
                   ignoreMerges: Bool = false, extra: [String] = []) throws -> BPETokenizer {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevel.charOfByte[b])] = b }
        for (a, b) in merges where vocab[a + b] == nil { vocab[a + b] = vocab.count }
        for t in extra where vocab[t] == nil { vocab[t] = vocab.count }
        var specials = added
        if !specials.contains(where: { $0.content == "<|endoftext|>" }) {
            specials.append(BPETokenizer.AddedToken(content: "<|endoftext|>", id: Int32(vocab.count), special: true))
        }
        return try BPETokenizer(vocab: vocab, merges: merges, addedTokens: specials, pattern: pattern, ignoreMerges: ignoreMerges,
                                bos: "<|endoftext|>", eos: "<|endoftext|>", pad: "<|endoftext|>", source: "test")
    }

    func strings(_ t: BPETokenizer, _ text: String) throws -> [String] { t.tokenStrings(try t.encode(text)) }

    func testByteLevelTableIsGPT2s() {
        XCTAssertEqual(ByteLevel.charOfByte[32], "Ġ")        // space
        XCTAssertEqual(ByteLevel.charOfByte[10], "Ċ")        // newline
        XCTAssertEqual(ByteLevel.charOfByte[65], "A")
        XCTAssertEqual(ByteLevel.charOfByte[0], "\u{100}")
        XCTAssertEqual(Set(ByteLevel.charOfByte).count, 256)
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(Array(0...255))), Array(0...255))
    }

    func testMergesApplyByRankThenLeftmost() throws {
        // "aaa": (a,a) merges at the leftmost position first → [aa, a], as Hugging Face's heap pops (rank, position).
        let t = try tokenizer(merges: [("a", "a")])
        XCTAssertEqual(try strings(t, "aaa"), ["aa", "a"])
        XCTAssertEqual(try strings(t, "aaaa"), ["aa", "aa"])
        // Lower rank wins regardless of position: (b,c) before (a,b) gives a + bc.
        let u = try tokenizer(merges: [("b", "c"), ("a", "b")])
        XCTAssertEqual(try strings(u, "abc"), ["a", "bc"])
        // A merge of merged tokens.
        let v = try tokenizer(merges: [("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld")])
        XCTAssertEqual(try strings(v, "hello world"), ["h", "e", "l", "l", "o", "Ġworld"])
        XCTAssertEqual(v.decode(try v.encode("hello world")), "hello world")
    }

    func testIgnoreMergesTakesWholeWords() throws {
        // Llama 3: a word that is itself a token is used as is, even without a merge path to it.
        let t = try tokenizer(merges: [], ignoreMerges: true, extra: ["hello"])
        XCTAssertEqual(try strings(t, "hello"), ["hello"])
        let u = try tokenizer(merges: [], ignoreMerges: false, extra: ["hello"])
        XCTAssertEqual(try strings(u, "hello"), ["h", "e", "l", "l", "o"])
    }

    func testGPT2Pieces() {
        func pieces(_ p: PreTokenizerPattern, _ text: String) -> [String] {
            let s = Array(text.unicodeScalars)
            return p.split(s).map { String(String.UnicodeScalarView(s[$0])) }
        }
        XCTAssertEqual(pieces(.gpt2, "Hello world!"), ["Hello", " world", "!"])
        XCTAssertEqual(pieces(.gpt2, "It's 2024"), ["It", "'s", " 2024"])
        XCTAssertEqual(pieces(.gpt2, "a   b  "), ["a", "  ", " b", "  "])
        XCTAssertEqual(pieces(.gpt2, "x\n\ny"), ["x", "\n", "\n", "y"])
        XCTAssertEqual(pieces(.gpt2, "IT'S"), ["IT", "'", "S"])       // case-sensitive contractions
        // Qwen2: single digits, case-insensitive contractions, a punctuation mark joins the next word, newlines end runs.
        XCTAssertEqual(pieces(.qwen2(maxDigits: 1), "IT'S 2024!"), ["IT", "'S", " ", "2", "0", "2", "4", "!"])
        XCTAssertEqual(pieces(.qwen2(maxDigits: 1), "(hello) x\n\n  y"), ["(hello", ")", " x", "\n\n", " ", " y"])
        XCTAssertEqual(pieces(.qwen2(maxDigits: 3), "1234567"), ["123", "456", "7"])
        XCTAssertEqual(pieces(.qwen2(maxDigits: 1), "x'ſx"), ["x", "'ſ", "x"])   // ſ case-folds to s
    }

    func testAddedTokensSplitTheTextFirst() throws {
        let t = try tokenizer(merges: [("a", "b")], added: [
            BPETokenizer.AddedToken(content: "<|im_start|>", id: 300, special: true),
            BPETokenizer.AddedToken(content: "<|im|>", id: 301, special: false),
        ])
        let ids = try t.encode("ab<|im_start|>ab<|endoftext|><|im|>")
        XCTAssertEqual(t.tokenStrings(ids), ["ab", "<|im_start|>", "ab", "<|endoftext|>", "<|im|>"])
        // Special tokens are dropped when decoding; a non-special added token decodes to its text.
        XCTAssertEqual(t.decode(ids), "abab<|im|>")
        XCTAssertEqual(t.bos, t.id(of: "<|endoftext|>"))
    }

    func testBadMergeAndMissingByteAreErrors() throws {
        var vocab = ["a": 0, "b": 1]
        XCTAssertThrowsError(try BPETokenizer(vocab: vocab, merges: [("a", "b")], addedTokens: [], pattern: .gpt2,
                                              bos: "a", eos: "a", pad: "a", source: "merges.txt")) { error in
            XCTAssertTrue("\(error)".contains("merge 1 of merges.txt"), "\(error)")
        }
        vocab["ab"] = 2
        let t = try BPETokenizer(vocab: vocab, merges: [("a", "b")], addedTokens: [], pattern: .gpt2,
                                 bos: "a", eos: "a", pad: "a", source: "x")
        XCTAssertEqual(try t.encode("ab"), [2])
        XCTAssertThrowsError(try t.encode("abc", context: "the prompt of example 1")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("byte 0x63") && message.contains("the prompt of example 1"), message)
        }
        XCTAssertThrowsError(try BPETokenizer(vocab: vocab, merges: [], addedTokens: [], pattern: .gpt2,
                                              bos: "<s>", eos: "a", pad: "a", source: "x")) { error in
            XCTAssertTrue("\(error)".contains("bos token \"<s>\""), "\(error)")
        }
    }

    func testTokenizerFolderFallsBackToCharacters() throws {
        let dir = NSTemporaryDirectory() + "bpe-files-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertTrue(try TokenizerFolder.load(folder: dir) is CharTokenizer)
        for (name, data) in try CharTokenizer.standard.checkpointFiles() { try data.write(to: URL(fileURLWithPath: dir + "/" + name)) }
        XCTAssertEqual(try TokenizerFolder.load(folder: dir) as? CharTokenizer, CharTokenizer.standard)
        // A GPT-2 vocab.json with merges.txt is BPE.
        let gpt2Vocab = ["<|endoftext|>": 0, "h": 1, "i": 2, "hi": 3, "Ġ": 4]
        try JSONSerialization.data(withJSONObject: gpt2Vocab).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        try "#version: 0.2\nh i\n".write(toFile: dir + "/merges.txt", atomically: true, encoding: .utf8)
        let bpe = try XCTUnwrap(try TokenizerFolder.load(folder: dir) as? BPETokenizer)
        XCTAssertEqual(try bpe.encode("hi<|endoftext|>"), [3, 0])
        XCTAssertEqual(bpe.eos, 0)
        XCTAssertEqual(Set(try bpe.checkpointFiles().keys), ["vocab.json", "merges.txt"])
    }
}
