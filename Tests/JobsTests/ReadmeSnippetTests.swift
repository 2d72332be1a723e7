import XCTest
import Foundation
// README-SNIPPET-BEGIN (compiles the Swift snippet of docs/hooks-and-store.md exactly as shown)
import RuleLensModel
// README-SNIPPET-IMPORT-END

/// The Swift snippet of docs/hooks-and-store.md (section "Model and hooks") compiles and runs as shown: the body below is the
/// snippet verbatim (indented), and `testSnippetMatchesTheREADME` fails when the two drift apart.
final class ReadmeSnippetTests: XCTestCase {
    func testSnippetRuns() throws {
        // README-BODY-BEGIN
        let model = try GPT(config: GPTConfig(nLayer: 2, nHead: 4, dModel: 128, nCtx: 32, vocabSize: 99), seed: 0)
        let tokens = [Int32](repeating: 5, count: 4 * 32)                                    // [4, 32] token ids
        let hooks = HookSet()
        let cache = hooks.cache(["blocks.*.hook_resid_post", "blocks.0.attn.hook_pattern"])   // observe (globs ok)
        try hooks.zero(["blocks.1.attn.hook_z"], selection: HookSelection(heads: [2]))          // ablate head 1.2
        hooks.edit(["blocks.0.hook_mlp_out"]) { _, values, shape in                            // any in-place edit
            for i in 0..<shape.reduce(1, *) { values[i] *= 0.5 }
        }
        try hooks.validate(for: model.config)          // typo → error with the closest site name
        let logits = model.forward(tokens: tokens, batch: 4, seqLen: 32, hooks: hooks)     // [4, 32, 99]
        let (shape, values) = cache["blocks.0.attn.hook_pattern"]!                          // [4, 4, 32, 32]
        // README-BODY-END
        XCTAssertEqual(shape, [4, 4, 32, 32])
        XCTAssertEqual(values.count, 4 * 4 * 32 * 32)
        XCTAssertEqual(cache["blocks.1.hook_resid_post"]?.shape, [4, 32, 128])
        XCTAssertTrue(logits[0].isFinite)
    }

    func testSnippetMatchesTheREADME() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("docs/hooks-and-store.md"), encoding: .utf8)
        guard let open = readme.range(of: "```swift\nimport RuleLensModel\n"),
              let close = readme.range(of: "```", range: open.upperBound..<readme.endIndex) else {
            return XCTFail("docs/hooks-and-store.md has no ```swift block starting with `import RuleLensModel`")
        }
        let snippetBody = readme[open.upperBound..<close.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let begin = source.range(of: "// README-BODY-BEGIN\n")!, end = source.range(of: "// README-BODY-END")!
        let testBody = source[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("// README-BODY") }
        XCTAssertEqual(testBody, snippetBody, "the README snippet and this test's body differ; copy one into the other")
    }
}
