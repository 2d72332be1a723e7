import Foundation
import RuleLensNumerics

/// What a rule-prior GPT conditions on: the data column whose value picks the prior, where the prior enters, and the
/// column's values in row order (sorted, as seen in the training data). Saved in config.json under `configKey`.
public struct RulePriorSpec: Codable, Equatable, Sendable {
    /// The example field (JSONL column) whose value selects the row, e.g. `rule`.
    public var column: String
    /// Where the row enters the stack (`GPTWiring` injection).
    public var inject: Injection
    /// Row r of the table belongs to rules[r].
    public var rules: [String]

    public init(column: String, inject: Injection, rules: [String]) {
        self.column = column; self.inject = inject; self.rules = rules
    }

    /// config.json key of the spec (transformers keeps unknown keys as config attributes and ignores them).
    public static let configKey = "rulelens_rule_prior"

    /// Hugging Face–style name of the table: `rule_prior.query.weight` etc.
    public var tensorName: String { "rule_prior.\(inject.rawValue).weight" }

    /// Floats per rule: one d_model vector per layer (query, key, value, memory), or one (embedding).
    public func width(_ c: GPTConfig) -> Int { inject == .embedding ? c.dModel : c.nLayer * c.dModel }

    /// The table's shape [rules, width].
    public func shape(_ c: GPTConfig) -> [Int] { [rules.count, width(c)] }

    /// The row of a rule value (nil when the training data never had it).
    public func row(of value: String) -> Int? { rules.firstIndex(of: value) }

    /// The spec as a JSON object for config.json.
    public var jsonObject: [String: Any] { ["column": column, "inject": inject.rawValue, "rules": rules] }

    /// Reads the spec from a config.json object (nil when there is none); malformed → an error naming the file.
    public static func read(config dict: [String: Any], path: String) throws -> RulePriorSpec? {
        guard let raw = dict[configKey] else { return nil }
        guard let obj = raw as? [String: Any], let column = obj["column"] as? String, let site = obj["inject"] as? String,
              let inject = Injection(rawValue: site), let rules = obj["rules"] as? [String], rules.count >= 1,
              Set(rules).count == rules.count else {
            throw RuleLensError("\(path): \(configKey) is not {\"column\": …, \"inject\": query|key|value|embedding|memory, \"rules\": [distinct names]}",
                                fix: "restore config.json from a copy (it is written by `rulelens train --rule-prior`)")
        }
        return RulePriorSpec(column: column, inject: inject, rules: rules)
    }
}

/// A GPT-2 trained with a rule prior: a learned table `rule_prior.<site>.weight` [rules, width] whose row for the
/// example's rule is injected at one site of every forward pass (`GPTWiring`): added to Q, K or V of every position
/// (one d_model vector per layer, row layout [layer, d_model]), added to every token embedding ([d_model]), or used
/// as one extra key = value slot per layer (memory, as the VAE's decoder).
///
/// The table lives in the GPT's own parameter buffer after the GPT-2 tensors (`GPT(extraTensors:)`), so AdamW, weight
/// decay (it is 2-D), gradient clipping, checkpoints and resume treat it like any other weight. Before each `forward`
/// the caller says which row each batch row uses: `ruleRows` (training, retrieval), or `select(promptRows:)` once for
/// jobs that run examples in their own batches (eval, logits): then each batch row's row is found from its prompt.
/// A model whose forward reads one learned rule-prior row per batch row. Jobs select the rows through this protocol
/// (`RulePriorData.select`), so they never downcast to the concrete model.
public protocol RuleConditionedModel: LanguageModel {
    var spec: RulePriorSpec { get }
    /// One table row per batch row of the next forward.
    var ruleRows: [Int] { get set }
    /// Maps [bos]+prompt token rows to table rows, for jobs that batch examples themselves.
    func select(prompts: [[Int32]], rows: [Int]) throws
}

public final class RulePriorGPT: RuleConditionedModel {
    public let gpt: GPT
    public let spec: RulePriorSpec
    /// The table inside `gpt.params` (and its gradient inside `gpt.grads`).
    public let table: ParameterTensor
    /// One table row per batch row of the next forward (set before each forward, or leave empty and `select`).
    public var ruleRows: [Int] = []
    /// Per-batch-row vectors [B][width] overriding the table (the retrieval controls: wrong rule, random, moved).
    public var overrideVectors: [[Float]]? = nil
    /// [bos]+prompt token rows → table row, for jobs that batch examples themselves (see `select`).
    private var promptRows: [[Int32]: Int] = [:]
    private var promptLengths: [Int] = []
    private var cond = FloatBuffer(count: 0), dcond = FloatBuffer(count: 0)
    private var lastRows: [Int] = []
    private var lastUsedTable = true

    /// A fresh model (GPT-2 initialisation; the table N(0, 0.02) from its own named stream of `seed`, so the GPT-2
    /// weights equal a plain `GPT(config:seed:)`'s bit for bit).
    public init(config: GPTConfig, spec: RulePriorSpec, seed: UInt64) throws {
        guard !spec.rules.isEmpty else {
            throw RuleLensError("a rule prior needs at least one rule value", fix: "train on data whose --rule-prior column has values")
        }
        self.spec = spec
        gpt = try GPT(config: config, seed: seed, wiring: GPTWiring(injections: [spec.inject]),
                      extraTensors: [(spec.tensorName, spec.shape(config))])
        table = gpt.params.tensor(spec.tensorName)!
    }

    public var config: GPTConfig { gpt.config }
    /// Pointer to row r of the table (width floats).
    public func row(_ r: Int) -> UnsafeMutablePointer<Float> { gpt.params.storage.ptr + table.offset + r * spec.width(config) }
    /// Row r as an array.
    public func rowValues(_ r: Int) -> [Float] { Array(UnsafeBufferPointer(start: row(r), count: spec.width(config))) }

    /// Lets jobs that batch examples themselves run this model: each forward finds a batch row's rule from its first
    /// tokens ([bos] + prompt, `prompts[i]`, whose rule row is `rows[i]`). Throws when one prompt has two rules.
    public func select(prompts: [[Int32]], rows: [Int]) throws {
        precondition(prompts.count == rows.count)
        var map: [[Int32]: Int] = [:]
        for (p, r) in zip(prompts, rows) {
            if let old = map[p], old != r {
                throw RuleLensError("two examples share a prompt but have different \(spec.column) values (\(spec.rules[old]), \(spec.rules[r]))",
                                    fix: "this command picks each example's prior by its prompt; give each prompt one \(spec.column), or use `rulelens retrieve`")
            }
            map[p] = r
        }
        let lengths = Array(Set(prompts.map(\.count))).sorted(by: >)
        // The longest matching prompt wins; a shorter prompt with another rule that begins a longer one is ambiguous.
        for (p, r) in map {
            for n in lengths where n < p.count {
                if let other = map[Array(p.prefix(n))], other != r {
                    throw RuleLensError("one prompt begins another but their \(spec.column) values differ (\(spec.rules[other]), \(spec.rules[r]))",
                                        fix: "this command picks each example's prior by its prompt; use `rulelens retrieve`, which passes the rule per example")
                }
            }
        }
        promptRows = map
        promptLengths = lengths
    }

    /// The rows for a batch: `ruleRows` when set, else looked up from the tokens (`select`).
    private func rows(tokens: [Int32], batch B: Int, seqLen T: Int) -> [Int] {
        if !ruleRows.isEmpty {
            precondition(ruleRows.count == B, "RulePriorGPT: \(ruleRows.count) rule rows for a batch of \(B)")
            return ruleRows
        }
        precondition(!promptRows.isEmpty, "RulePriorGPT: set ruleRows (or call select) before forward")
        return (0..<B).map { b in
            for n in promptLengths where n <= T {
                if let r = promptRows[Array(tokens[(b * T)..<(b * T + n)])] { return r }
            }
            preconditionFailure("RulePriorGPT: batch row \(b) starts with no prompt given to select")
        }
    }

    /// Fills `cond` in the wiring's layout ([L, B, d] per layer, [B, d] for embedding) from per-batch-row vectors.
    private func fillConditioning(_ vectorOf: (Int) -> UnsafePointer<Float>, batch B: Int) {
        let L = config.nLayer, d = config.dModel
        let perLayer = spec.inject != .embedding
        let count = (perLayer ? L : 1) * B * d
        if cond.count < count { cond = FloatBuffer(count: count) }
        Conditioning.layout(rows: vectorOf, batch: B, layers: L, dModel: d, perLayer: perLayer, into: cond.ptr)
    }

    public func forward(tokens: [Int32], batch B: Int, seqLen T: Int, hooks: HookSet?) -> UnsafeMutablePointer<Float> {
        let width = spec.width(config)
        if let overrideVectors {
            precondition(overrideVectors.count == B && overrideVectors.allSatisfy { $0.count == width },
                         "RulePriorGPT: override vectors need \(B) rows of \(width)")
            let flat = overrideVectors.flatMap { $0 }
            flat.withUnsafeBufferPointer { f in fillConditioning({ f.baseAddress! + $0 * width }, batch: B) }
            lastUsedTable = false
        } else {
            let rows = rows(tokens: tokens, batch: B, seqLen: T)
            fillConditioning({ UnsafePointer(self.row(rows[$0])) }, batch: B)
            lastRows = rows; lastUsedTable = true
        }
        return gpt.forward(tokens: tokens, batch: B, seqLen: T, hooks: hooks, conditioning: Conditioning(spec.inject, UnsafePointer(cond.ptr)))
    }

    /// Backpropagates the last loss; the table rows used by the last forward get the summed gradient of their batch rows.
    public func backward() {
        let L = config.nLayer, d = config.dModel, width = spec.width(config)
        let B = lastRows.count
        let perLayer = spec.inject != .embedding
        let count = (perLayer ? L : 1) * B * d
        if dcond.count < count { dcond = FloatBuffer(count: count) }
        dcond.ptr.update(repeating: 0, count: count)
        let p = dcond.ptr
        gpt.backward(conditioningGradients: ConditioningGradients(spec.inject, p))
        guard lastUsedTable else { return }
        let tableGrad = gpt.grads.storage.ptr + table.offset
        // Summed in batch order, so the result does not depend on threads.
        for (b, r) in lastRows.enumerated() {
            let dst = tableGrad + r * width
            if perLayer {
                for l in 0..<L { let src = p + (l * B + b) * d; for c in 0..<d { dst[l * d + c] += src[c] } }
            } else {
                let src = p + b * d
                for c in 0..<d { dst[c] += src[c] }
            }
        }
    }

    /// A plain-wired copy of the GPT-2 weights with `injection` wiring (nil: none), for the retrieval conditions
    /// that move the prior to another site or remove it. The table is not copied.
    public func twin(injection: Injection?) throws -> GPT {
        let g = try GPT(config: config, seed: 0, wiring: GPTWiring(injections: injection.map { [$0] } ?? []))
        g.params.storage.ptr.update(from: gpt.params.storage.ptr, count: g.params.storage.count)
        return g
    }

    // MARK: LanguageModel
    public var architecture: String { "gpt2" }
    public var vocabSize: Int { gpt.vocabSize }
    public var contextLength: Int { gpt.contextLength }
    public var hookSites: [String] { gpt.hookSites }
    public func hookDims(_ site: String) -> [String] { gpt.hookDims(site) }
    public func hookShape(_ site: String, batch: Int, seqLen: Int) -> [Int] { gpt.hookShape(site, batch: batch, seqLen: seqLen) }
    public var retainsActivationsForBackward: Bool {
        get { gpt.retainsActivationsForBackward } set { gpt.retainsActivationsForBackward = newValue }
    }
    public func checkInput(tokens: [Int32], batch: Int, seqLen: Int) throws { try gpt.checkInput(tokens: tokens, batch: batch, seqLen: seqLen) }
    public func loss(targets: [Int32], lossMask: [Float]) -> Float { gpt.loss(targets: targets, lossMask: lossMask) }
    public func zeroGrads() { gpt.zeroGrads() }
    public var parameterTensors: [ParameterTensor] { gpt.params.tensors }
    public var parameterStorage: FloatBuffer { gpt.params.storage }
    public var gradientStorage: FloatBuffer { gpt.grads.storage }
}
