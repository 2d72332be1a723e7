import RuleLensModel
import RuleLensNumerics

/// The sites activation patching sweeps, with TransformerLens's function each matches.
public enum PatchSite: String, Sendable, CaseIterable {
    /// `get_act_patch_resid_pre`: [layer, position].
    case residPre = "resid_pre"
    /// `get_act_patch_resid_mid`: [layer, position].
    case residMid = "resid_mid"
    /// `get_act_patch_attn_out`: [layer, position].
    case attnOut = "attn_out"
    /// `get_act_patch_mlp_out`: [layer, position].
    case mlpOut = "mlp_out"
    /// `get_act_patch_attn_head_out_all_pos`: [layer, head], one head's `hook_z` at every position.
    case z

    /// The hook site of layer l.
    public func hook(_ l: Int) -> String {
        switch self {
        case .residPre: return "blocks.\(l).hook_resid_pre"
        case .residMid: return "blocks.\(l).hook_resid_mid"
        case .attnOut: return "blocks.\(l).hook_attn_out"
        case .mlpOut: return "blocks.\(l).hook_mlp_out"
        case .z: return "blocks.\(l).attn.hook_z"
        }
    }

    /// Parses a site name (`resid_pre`, …, `z`), or throws listing the valid ones.
    public static func named(_ name: String) throws -> PatchSite {
        guard let site = PatchSite(rawValue: name) else {
            throw RuleLensError("unknown patching site '\(name)'",
                                fix: "use one or more of: \(PatchSite.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return site
    }
}

/// A clean prompt and its corrupted counterpart, both `[bos] + prompt` of equal length, with their first answer tokens.
public struct PatchPair: Sendable, Equatable {
    public var clean: [Int32]
    public var corrupt: [Int32]
    public var cleanAnswer: Int32
    public var corruptAnswer: Int32
    public init(clean: [Int32], corrupt: [Int32], cleanAnswer: Int32, corruptAnswer: Int32) {
        self.clean = clean; self.corrupt = corrupt; self.cleanAnswer = cleanAnswer; self.corruptAnswer = corruptAnswer
    }
}

/// One site's patching matrix: [layers, positions] (or [layers, heads] for z), row-major.
public struct PatchMatrix: Sendable {
    public var site: PatchSite
    public var rows: Int
    public var cols: Int
    /// Mean over pairs of logit[clean answer] − logit[corrupt answer] at the last position, with the cell patched.
    public var logitDiff: [Double]
    /// (logitDiff − corrupt) / (clean − corrupt).
    public var normalized: [Double]
}

/// A patching sweep's results.
public struct PatchingResult: Sendable {
    public var pairs: Int
    public var seqLen: Int
    /// The metric on the clean and on the corrupted prompts, unpatched.
    public var cleanBaseline: Double
    public var corruptBaseline: Double
    public var matrices: [PatchMatrix]
}

/// Activation patching as TransformerLens's `patching` module defines it.
public enum Patching {
    /// Runs each corrupted prompt with one site at one position (one head at every position, for z) replaced by
    /// its value in the paired clean run. The clean pass runs once and keeps only the patched sites; each cell is
    /// one batched forward over all pairs (in chunks of `batchSize`). `progress(done, total)` after each cell.
    public static func sweep(_ model: InterventionModel, pairs: [PatchPair], sites: [PatchSite], batchSize: Int = 512,
                             progress: ((Int, Int) -> Void)? = nil) throws -> PatchingResult {
        let g = try InterventionGeometry(model), V = g.vocabSize, L = g.nLayer
        for site in sites { try g.require(site.hook(0), for: "patching \(site.rawValue)") }
        guard let first = pairs.first else {
            throw RuleLensError("no pairs to patch", fix: "give --clean and --corrupt files with at least one line each")
        }
        let T = first.clean.count
        for (i, p) in pairs.enumerated() where p.clean.count != T || p.corrupt.count != T {
            throw RuleLensError("pair \(i + 1) has \(p.clean.count) clean and \(p.corrupt.count) corrupted prompt tokens, but pair 1 has \(T): patching aligns positions, so every prompt must have the same length",
                                fix: "keep only pairs of one prompt length (e.g. `rulelens data pairs` on prompts of one length)")
        }
        guard T <= g.contextLength else {
            throw RuleLensError("prompts have \(T) tokens, more than the model's context of \(g.contextLength)", fix: "shorten the prompts")
        }
        let P = pairs.count
        let cleanTokens = pairs.flatMap(\.clean), corruptTokens = pairs.flatMap(\.corrupt)
        try model.checkInput(tokens: cleanTokens, batch: P, seqLen: T)
        try model.checkInput(tokens: corruptTokens, batch: P, seqLen: T)
        let groups = chunks(P, batchSize)

        /// Mean over pairs of the metric at the last position for one pass per chunk.
        func metric(_ tokens: [Int32], _ hooks: HookSet?, _ context: RowContext?) -> Double {
            var total = 0.0
            for chunk in groups {
                context?.rows = chunk
                let input = Array(tokens[(chunk[0] * T)..<((chunk.last! + 1) * T)])
                let logits = model.forward(tokens: input, batch: chunk.count, seqLen: T, hooks: hooks)
                for (row, i) in chunk.enumerated() {
                    let z = logits + (row * T + T - 1) * V
                    total += Double(z[Int(pairs[i].cleanAnswer)]) - Double(z[Int(pairs[i].corruptAnswer)])
                }
            }
            return total / Double(P)
        }

        return inference(model) {
            // The clean run, caching only the patched sites: [P, T, width] per (site, layer) (width d_model, or
            // H·d_head for z, which differs from d_model when the family sets head_dim).
            let hookNames = sites.flatMap { s in (0..<L).map { s.hook($0) } }
            var widths: [String: Int] = [:]
            var cleanValues: [String: [Float]] = [:]
            for name in hookNames {
                widths[name] = g.width(model, name)
                cleanValues[name] = [Float](repeating: 0, count: P * T * widths[name]!)
            }
            let recorder = HookSet(), recordContext = RowContext()
            recorder.observe(hookNames) { name, v, _ in
                let d = widths[name]!, start = recordContext.rows[0] * T * d
                cleanValues[name]!.withUnsafeMutableBufferPointer { ($0.baseAddress! + start).update(from: v, count: recordContext.rows.count * T * d) }
            }
            let cleanBaseline = metric(cleanTokens, recorder, recordContext)
            let corruptBaseline = metric(corruptTokens, nil, nil)
            let denominator = cleanBaseline - corruptBaseline

            let total = sites.reduce(0) { $0 + L * ($1 == .z ? g.nHead : T) }
            var done = 0
            var matrices: [PatchMatrix] = []
            for site in sites {
                let cols = site == .z ? g.nHead : T
                var values = [Double](repeating: 0, count: L * cols)
                for l in 0..<L {
                    let name = site.hook(l)
                    let source = cleanValues[name]!, d = widths[name]!
                    for col in 0..<cols {
                        let hooks = HookSet(), context = RowContext()
                        hooks.edit([name]) { _, v, _ in
                            let base = context.rows[0]
                            source.withUnsafeBufferPointer { src in
                                for row in 0..<context.rows.count {
                                    let from = src.baseAddress! + (base + row) * T * d, to = v + row * T * d
                                    if site == .z {
                                        // [T, H, dh]: head `col` at every position.
                                        let dh = g.dHead
                                        for t in 0..<T { (to + t * d + col * dh).update(from: from + t * d + col * dh, count: dh) }
                                    } else {
                                        (to + col * d).update(from: from + col * d, count: d)
                                    }
                                }
                            }
                        }
                        values[l * cols + col] = metric(corruptTokens, hooks, context)
                        done += 1
                        progress?(done, total)
                    }
                }
                matrices.append(PatchMatrix(site: site, rows: L, cols: cols, logitDiff: values,
                                            normalized: values.map { ($0 - corruptBaseline) / denominator }))
            }
            return PatchingResult(pairs: P, seqLen: T, cleanBaseline: cleanBaseline, corruptBaseline: corruptBaseline, matrices: matrices)
        }
    }
}
