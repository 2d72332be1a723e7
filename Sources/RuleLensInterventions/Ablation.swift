import Foundation
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics

/// Per-example outcomes of one run (clean, or with one component ablated).
public struct ExampleMetrics: Sendable {
    /// Greedy decoding (the ablation applied at every generated token) reproduces the target followed by eos.
    public var correct: [Bool]
    /// Teacher-forced cross-entropy (nats), mean over the example's target tokens and eos.
    public var loss: [Double]
    /// At the last prompt position: logit of the correct first answer token − the largest other logit.
    public var logitDiff: [Double]

    /// The metric as numbers per example (accuracy as 0/1).
    public func values(_ metric: AblationMetric) -> [Double] {
        switch metric {
        case .accuracy: return correct.map { $0 ? 1 : 0 }
        case .loss: return loss
        case .logitDiff: return logitDiff
        }
    }
}

/// The three measured quantities.
public enum AblationMetric: String, Sendable, CaseIterable {
    case accuracy, loss
    case logitDiff = "logit_diff"
}

/// Rule separability at a site (the label's clusters), as `probe` measures it.
public struct SeparabilityScores: Sendable {
    public var silhouette: Double
    public var knnAccuracy: Double
    public var linearProbeAccuracy: Double
}

/// What to ablate and how.
public struct AblationOptions: Sendable {
    public var cells: [AblationCell]
    public var method: AblationMethod = .zero
    public var positions: AblationPositions = .all
    public var seed: UInt64 = 0
    public var batchSize: Int = 64
    /// Measure the label's separability at this site (its value at the last prompt position) in every run.
    public var separabilitySite: String? = nil
    /// Mean / resample values recorded elsewhere (an activation dump) instead of a reference pass over examples.
    public var referenceActivations: ReferenceActivations? = nil
    public init(cells: [AblationCell]) { self.cells = cells }
}

/// One run's results.
public struct AblationRun: Sendable {
    /// nil for the clean run.
    public var cell: AblationCell?
    public var metrics: ExampleMetrics
    public var separability: SeparabilityScores?
}

/// The clean run and one run per cell, per example.
public struct AblationSweep: Sendable {
    public var clean: AblationRun
    public var runs: [AblationRun]
}

/// FFN-versus-attention ablations, per layer and per head (the `rulelens ablate` library).
public enum Ablation {
    /// Runs `items` clean and with each of `options.cells` ablated. `reference` (default: `items`) supplies the
    /// mean and resample values. `labels` (one per item) are needed for `separabilitySite`.
    /// `progress(done, total)` is called after each run.
    public static func sweep(_ model: InterventionModel, items: [InterventionItem], reference: [InterventionItem]? = nil,
                             labels: Labels? = nil, options: AblationOptions,
                             progress: ((Int, Int) -> Void)? = nil) throws -> AblationSweep {
        let geometry = try InterventionGeometry(model)
        for cell in options.cells {
            // Another stack's layers (a VAE's encoder) are checked by their sites.
            if cell.stack.isEmpty { try geometry.checkLayer(cell.layer) }
            if let h = cell.head { try geometry.checkHead(h) }
            try geometry.require(cell.site, for: "ablating \(cell.name)")
        }
        if let site = options.separabilitySite {
            _ = try model.resolveHooks([site])
            // A per-position site (read at the last prompt position) or one vector per example (a VAE's latent.hook_mu).
            let dims = model.hookDims(site)
            guard dims.contains("pos") || (dims.count == 2 && dims[0] == "batch"), !site.contains("*") else {
                throw RuleLensError("--separability-at \(site) is not one per-position or per-example site",
                                    fix: "name one site such as blocks.1.hook_resid_post (or latent.hook_mu on a VAE)")
            }
            guard let labels, labels.count == items.count else {
                throw RuleLensError("--separability-at needs a label per example", fix: "pass --label COLUMN (e.g. rule)")
            }
            try Analysis.requireClasses(labels, "the label", maxClassesBelowN: true)
        }
        let referenceItems = reference ?? items
        let recorded = options.referenceActivations
        let referenceLengths = recorded?.lengths ?? referenceItems.map(\.inputLength)
        let referenceName = recorded.map { "--mean-from \($0.origin)" } ?? "--mean-from"
        if options.method != .zero {
            let longest = referenceLengths.max() ?? 0
            if let i = items.firstIndex(where: { $0.inputLength > longest }) {
                throw RuleLensError("example \(i + 1) needs \(items[i].inputLength) positions, but the longest \(referenceName) example has \(longest): \(options.method.rawValue) ablation has no value for its later positions",
                                    fix: "use a --mean-from file whose examples are at least as long as the data's (e.g. the data itself)")
            }
        }
        var donors: [Int]? = nil
        if options.method == .resample {
            let result = resampleDonors(items: items, referenceLengths: referenceLengths, sameSet: reference == nil && recorded == nil,
                                        seed: options.seed, stream: "donors")
            guard let d = result.donors else {
                throw RuleLensError("example \(result.failed! + 1) has no other example at least as long to resample from",
                                    fix: "resample needs at least two examples of each length; use --method mean, or more data")
            }
            donors = d
        }
        let total = options.cells.count + 1
        let clean = try run(model, items: items, labels: labels, hooks: HookSet(), context: RowContext(), options: options)
        progress?(1, total)
        var runs: [AblationRun] = []
        for (k, cell) in options.cells.enumerated() {
            let hooks = HookSet(), context = RowContext()
            let ref: SiteReference?
            if options.method == .zero { ref = nil }
            else if let recorded { ref = try SiteReference.from(recorded, cell: cell, geometry: geometry) }
            else { ref = SiteReference.record(model, items: referenceItems, cell: cell, geometry: geometry, batchSize: options.batchSize) }
            registerAblation(hooks, cell: cell, method: options.method, positions: options.positions, items: items,
                             reference: ref, donors: donors, context: context, geometry: geometry)
            var r = try run(model, items: items, labels: labels, hooks: hooks, context: context, options: options)
            r.cell = cell
            runs.append(r)
            progress?(k + 2, total)
        }
        return AblationSweep(clean: clean, runs: runs)
    }

    /// Teacher-forced pass (loss, logit difference, separability features) and greedy decoding, with `hooks`.
    static func run(_ model: InterventionModel, items: [InterventionItem], labels: Labels?, hooks: HookSet, context: RowContext,
                    options: AblationOptions) throws -> AblationRun {
        let V = model.vocabSize
        var loss = [Double](repeating: 0, count: items.count)
        var logitDiff = [Double](repeating: 0, count: items.count)
        var features: FloatMatrix? = nil
        if let site = options.separabilitySite {
            // [batch, pos, …]: the value at the last prompt position; [batch, width] (latent.hook_mu): the example's row.
            let perPosition = model.hookDims(site).contains("pos")
            let width = model.hookShape(site, batch: 1, seqLen: 1).dropFirst(perPosition ? 2 : 1).reduce(1, *)
            let m = FloatMatrix(rows: items.count, cols: width)
            features = m
            hooks.observe([site]) { _, v, shape in
                guard context.teacherForced else { return }
                let T = perPosition ? shape[1] : 1
                for (row, i) in context.rows.enumerated() {
                    let t = perPosition ? items[i].answerPosition : 0
                    (m.ptr + i * width).update(from: v + (row * T + t) * width, count: width)
                }
            }
        }
        inference(model) {
            for chunk in chunks(items.count, options.batchSize) {
                let (tokens, T) = paddedInputs(items, chunk)
                context.rows = chunk
                let logits = model.forward(tokens: tokens, batch: chunk.count, seqLen: T, hooks: hooks)
                for (row, i) in chunk.enumerated() {
                    let item = items[i]
                    var sum = 0.0
                    for t in item.answerPosition..<item.inputLength {
                        sum += crossEntropy(logits + (row * T + t) * V, V, target: Int(item.tokens[t + 1]))
                    }
                    loss[i] = sum / Double(item.inputLength - item.answerPosition)
                    logitDiff[i] = marginOverBestOther(logits + (row * T + item.answerPosition) * V, V, target: Int(item.firstAnswerToken))
                }
            }
        }
        // Greedy decoding with the same hooks: a little past the longest target, enough to see the eos (each item's
        // last token: the tokenizer's eos, whatever the family's).
        let eos = items.first?.tokens.last ?? 2
        let longest = items.map { $0.tokens.count - $0.promptLength }.max() ?? 1
        context.rows = []
        context.teacherForced = false
        let outputs = inference(model) {
            Generate.greedy(model, prompts: items.map(\.prompt), maxNewTokens: longest + 1, eos: eos, batchSize: options.batchSize,
                            hooks: hooks.isEmpty ? nil : hooks, willRun: { context.rows = $0 })
        }
        let correct = items.indices.map { outputs[$0] == Array(items[$0].tokens[items[$0].promptLength..<(items[$0].tokens.count - 1)]) }
        var separability: SeparabilityScores? = nil
        if let features, let labels {
            try Analysis.requireFinite(features, "the --separability-at site")
            let probe = try Analysis.linearProbe(features, labels, folds: .shuffled(5, seed: options.seed))
            separability = SeparabilityScores(silhouette: try Analysis.silhouette(features, labels),
                                              knnAccuracy: try Analysis.knnAccuracy(features, labels, k: 5),
                                              linearProbeAccuracy: probe.accuracy)
        }
        return AblationRun(cell: nil, metrics: ExampleMetrics(correct: correct, loss: loss, logitDiff: logitDiff), separability: separability)
    }
}

/// −log softmax(z)[target], in Double.
func crossEntropy(_ z: UnsafePointer<Float>, _ V: Int, target: Int) -> Double {
    var maxValue = z[0]
    for v in 1..<V where z[v] > maxValue { maxValue = z[v] }
    var sumExp = 0.0
    for v in 0..<V { sumExp += exp(Double(z[v] - maxValue)) }
    return log(sumExp) - Double(z[target] - maxValue)
}

/// z[target] − max over v ≠ target of z[v].
func marginOverBestOther(_ z: UnsafePointer<Float>, _ V: Int, target: Int) -> Double {
    var best = -Float.infinity
    for v in 0..<V where v != target && z[v] > best { best = z[v] }
    return Double(z[target]) - Double(best)
}

/// The index of the largest value other than `target`.
func bestOther(_ z: UnsafePointer<Float>, _ V: Int, target: Int) -> Int {
    var best = -Float.infinity, index = 0
    for v in 0..<V where v != target && z[v] > best { best = z[v]; index = v }
    return index
}
