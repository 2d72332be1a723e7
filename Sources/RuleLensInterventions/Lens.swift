import Foundation
import RuleLensModel
import RuleLensNumerics

/// The logit lens and direct logit attribution at the last prompt position of each example.
public struct LensResult: Sendable {
    /// Residual stages in TransformerLens's `accumulated_resid(incl_mid=True)` order: "0_pre", "0_mid", "1_pre", …, "final_post".
    public var stages: [String]
    /// The site each stage reads ("blocks.0.hook_resid_pre", …, "blocks.{L-1}.hook_resid_post").
    public var stageSites: [String]
    /// [stage, example, vocab]: ln_final (recomputed on the stage) then the unembedding.
    public var logits: [Float]
    public var vocabSize: Int
    /// [stage, example]: softmax probability of the correct first answer token, its rank (1 = top), top-1 hit.
    public var probability: [Double]
    public var rank: [Int]
    public var correct: [Bool]
    /// Per example: the correct first answer token and the best other token of the final logits (the DLA pair).
    public var answerToken: [Int32]
    public var otherToken: [Int32]
    /// Per example: logit[answer] − logit[other] of the model.
    public var logitDiff: [Double]
    /// Component names: "embed", "pos_embed" (models with learned positions only), then per layer "L{l} attn", "L{l} H{h}"…,
    /// "L{l} attn bias", "L{l} mlp", and last "ln_final bias" (LayerNorm only).
    public var components: [String]
    /// [component, example]: each component's direct share of the logit difference.
    public var attribution: [Double]
    /// Which components sum to the logit difference (embed, pos_embed, every layer's attn and mlp, ln_final bias).
    public var isLayerTotal: [Bool]
    public var count: Int
}

/// The logit lens and direct logit attribution, as TransformerLens defines them.
public enum Lens {
    /// - Logit lens: each stage of the residual stream at the last prompt position through `ln_final` (its mean
    ///   and scale recomputed on that stage, then its weight and bias: `accumulated_resid(apply_ln=True)`) and the
    ///   unembedding.
    /// - Direct logit attribution: each component's output, centred and divided by the final LayerNorm scale of the
    ///   real run (frozen, as `apply_ln_to_stack`), dotted with w_lnf ⊙ (W_U[answer] − W_U[other]) — TransformerLens's
    ///   `logit_attrs` on a model with `fold_ln`. Head results exclude the constant part of the values (the value
    ///   bias and ln_1's bias through W_V, which TransformerLens folds into the output bias); "attn bias" is b_O plus
    ///   that constant through W_O. The embed, pos_embed, attn, mlp and "ln_final bias" rows sum to the logit difference.
    public static func run(_ model: InterventionModel, items: [InterventionItem], batchSize: Int = 64,
                           progress: ((Int, Int) -> Void)? = nil) throws -> LensResult {
        let readout = try lensReadable(model)
        let g = try InterventionGeometry(model)
        let L = g.nLayer, d = g.dModel, V = g.vocabSize, H = g.nHead, dh = g.dHead, qW = H * dh, N = items.count
        try g.require("blocks.0.attn.hook_z", for: "direct logit attribution per head")
        var stages: [String] = [], stageSites: [String] = []
        for l in 0..<L {
            stages += ["\(l)_pre", "\(l)_mid"]
            stageSites += ["blocks.\(l).hook_resid_pre", "blocks.\(l).hook_resid_mid"]
        }
        stages.append("final_post"); stageSites.append("blocks.\(L - 1).hook_resid_post")
        let embeddings = readout.lensEmbeddingSites
        var componentSites = embeddings.map(\.site)
        for l in 0..<L { componentSites += ["blocks.\(l).hook_attn_out", "blocks.\(l).attn.hook_z", "blocks.\(l).hook_mlp_out"] }
        let sites = Array(Set(stageSites + componentSites))
        for s in sites { try g.require(s, for: "the logit lens") }
        // At the answer position only: site → [N, width] (width d_model, or H·d_head for z).
        var captured: [String: [Float]] = [:]
        var widths: [String: Int] = [:]
        for s in sites { widths[s] = g.width(model, s); captured[s] = [Float](repeating: 0, count: N * widths[s]!) }
        let hooks = HookSet(), context = RowContext()
        hooks.observe(sites) { name, v, shape in
            let T = shape[1], w = widths[name]!
            captured[name]!.withUnsafeMutableBufferPointer { out in
                for (row, i) in context.rows.enumerated() {
                    (out.baseAddress! + i * w).update(from: v + (row * T + items[i].answerPosition) * w, count: w)
                }
            }
        }
        let groups = chunks(N, batchSize)
        try inference(model) {
            for (k, chunk) in groups.enumerated() {
                let (tokens, T) = paddedInputs(items, chunk)
                try model.checkInput(tokens: tokens, batch: chunk.count, seqLen: T)
                context.rows = chunk
                _ = model.forward(tokens: tokens, batch: chunk.count, seqLen: T, hooks: hooks)
                progress?(k + 1, groups.count + 1)
            }
        }
        let norm = readout.lensFinalNorm, unembedding = readout.lensUnembedding
        let eps = norm.eps
        // Logit lens.
        let S = stages.count
        var logits = [Float](repeating: 0, count: S * N * V)
        var probability = [Double](repeating: 0, count: S * N), rank = [Int](repeating: 0, count: S * N)
        var correct = [Bool](repeating: false, count: S * N)
        var normed = [Float](repeating: 0, count: N * d)
        for (s, site) in stageSites.enumerated() {
            let x = captured[site]!
            for i in 0..<N {
                let (mean, rstd) = meanAndInverseScale(x, i * d, d, eps, centered: norm.centers)
                for k in 0..<d { normed[i * d + k] = Float((Double(x[i * d + k]) - mean) * rstd) * norm.weight[k] + (norm.bias?[k] ?? 0) }
            }
            // logits[s] [N, V] = normed [N, d] · wteᵀ [d, V]
            normed.withUnsafeBufferPointer { a in
                logits.withUnsafeMutableBufferPointer { out in
                    BLAS.sgemm(.none, .transposed, m: N, n: V, k: d, a.baseAddress!, unembedding, out.baseAddress! + s * N * V)
                }
            }
            for i in 0..<N {
                let z = Array(logits[(s * N + i) * V..<((s * N + i + 1) * V)])
                let t = Int(items[i].firstAnswerToken)
                let maxValue = z.max()!
                let sumExp = z.reduce(0.0) { $0 + exp(Double($1 - maxValue)) }
                probability[s * N + i] = exp(Double(z[t] - maxValue)) / sumExp
                let above = z.filter { $0 > z[t] }.count
                rank[s * N + i] = above + 1
                correct[s * N + i] = above == 0
            }
        }
        // Direct logit attribution.
        let final = captured[stageSites.last!]!
        let finalLogits = (S - 1) * N * V
        var answerToken: [Int32] = [], otherToken: [Int32] = [], logitDiff: [Double] = []
        var components = embeddings.map(\.name)
        var isLayerTotal = embeddings.map { _ in true }
        for l in 0..<L {
            components.append("L\(l) attn"); isLayerTotal.append(true)
            for h in 0..<H { components.append("L\(l) H\(h)"); isLayerTotal.append(false) }
            components.append("L\(l) attn bias"); isLayerTotal.append(false)
            components.append("L\(l) mlp"); isLayerTotal.append(true)
        }
        // ln_final's bias reaches the logit difference as b · (W_U[answer] − W_U[other]), a constant of the token pair
        // (TransformerLens folds it into b_U, outside logit_attrs); with it the starred rows sum to the difference.
        // RMSNorm has no bias: no row.
        if norm.bias != nil { components.append("ln_final bias"); isLayerTotal.append(true) }
        let attentionOutput = (0..<L).map { readout.lensAttentionOutput(layer: $0) }     // [H·dh, d] each
        let constantValue = (0..<L).map { readout.lensConstantValue(layer: $0) }         // [H·dh] each
        var attribution = [Double](repeating: 0, count: components.count * N)
        var direction = [Double](repeating: 0, count: d)
        var vector = [Double](repeating: 0, count: d)
        for i in 0..<N {
            let t = Int(items[i].firstAnswerToken)
            let other = logits.withUnsafeBufferPointer { bestOther($0.baseAddress! + finalLogits + i * V, V, target: t) }
            answerToken.append(Int32(t)); otherToken.append(Int32(other))
            logitDiff.append(Double(logits[finalLogits + i * V + t]) - Double(logits[finalLogits + i * V + other]))
            let (_, rstd) = meanAndInverseScale(final, i * d, d, eps, centered: norm.centers)
            for k in 0..<d { direction[k] = Double(norm.weight[k]) * (Double(unembedding[t * d + k]) - Double(unembedding[other * d + k])) }
            /// (v − mean v) · direction / σ (LayerNorm); v · direction / σ (RMSNorm)
            func attr(_ v: [Double]) -> Double {
                let m = norm.centers ? v.reduce(0, +) / Double(d) : 0
                var s = 0.0
                for k in 0..<d { s += (v[k] - m) * direction[k] }
                return s * rstd
            }
            func row(_ site: String) -> [Double] { (0..<d).map { Double(captured[site]![i * d + $0]) } }
            var index = 0
            func put(_ value: Double) { attribution[index * N + i] = value; index += 1 }
            for e in embeddings { put(attr(row(e.site))) }
            for l in 0..<L {
                let attnOut = row("blocks.\(l).hook_attn_out")
                put(attr(attnOut))
                let z = captured["blocks.\(l).attn.hook_z"]!
                let wo = attentionOutput[l], bv = constantValue[l]
                var headsTotal = [Double](repeating: 0, count: d)
                for h in 0..<H {
                    // result_h[k] = Σ_j (z[h·dh + j] − constant value[h·dh + j]) · W_O[h·dh + j, k]
                    for k in 0..<d { vector[k] = 0 }
                    for j in 0..<dh {
                        let a = Double(z[i * qW + h * dh + j]) - bv[h * dh + j]
                        let wrow = (h * dh + j) * d
                        for k in 0..<d { vector[k] += a * Double(wo[wrow + k]) }
                    }
                    for k in 0..<d { headsTotal[k] += vector[k] }
                    put(attr(vector))
                }
                put(attr((0..<d).map { attnOut[$0] - headsTotal[$0] }))
                put(attr(row("blocks.\(l).hook_mlp_out")))
            }
            if let bias = norm.bias {
                var biasShare = 0.0
                for k in 0..<d { biasShare += Double(bias[k]) * (Double(unembedding[t * d + k]) - Double(unembedding[other * d + k])) }
                put(biasShare)
            }
        }
        progress?(groups.count + 1, groups.count + 1)
        return LensResult(stages: stages, stageSites: stageSites, logits: logits, vocabSize: V, probability: probability, rank: rank,
                          correct: correct, answerToken: answerToken, otherToken: otherToken, logitDiff: logitDiff,
                          components: components, attribution: attribution, isLayerTotal: isLayerTotal, count: N)
    }

    /// Mean and 1/√(var + eps) (population variance, as LayerNorm) of x[offset..<offset+d], in Double; with
    /// `centered` false, mean 0 and 1/√(mean(x²) + eps) (RMSNorm).
    static func meanAndInverseScale(_ x: [Float], _ offset: Int, _ d: Int, _ eps: Double, centered: Bool = true) -> (Double, Double) {
        var mean = 0.0
        if centered {
            for k in 0..<d { mean += Double(x[offset + k]) }
            mean /= Double(d)
        }
        var variance = 0.0
        for k in 0..<d { let e = Double(x[offset + k]) - mean; variance += e * e }
        variance /= Double(d)
        return (mean, 1 / (variance + eps).squareRoot())
    }
}
