import Foundation
@testable import RuleLensModel

/// A deliberately naive GPT-2 in Double, written straight from the equations (plain loops, no BLAS, nothing
/// shared with the model code), used as the independent reference for logits and finite-difference gradients.
struct ReferenceGPT {
    let c: GPTConfig
    var p: [String: [Double]]

    init(_ params: GPTParameters) {
        c = params.config
        var values: [String: [Double]] = [:]
        for t in params.tensors { values[t.name] = params.values(t.name)!.map(Double.init) }
        p = values
    }

    private func layerNorm(_ x: [[Double]], _ w: [Double], _ b: [Double]) -> [[Double]] {
        x.map { row in
            let mean = row.reduce(0, +) / Double(row.count)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(row.count)
            let rstd = 1 / (variance + Double(c.layerNormEps)).squareRoot()
            return row.indices.map { (row[$0] - mean) * rstd * w[$0] + b[$0] }
        }
    }

    /// y[t][j] = b[j] + Σᵢ x[t][i]·W[i, j] with W stored [in, out].
    private func linear(_ x: [[Double]], _ w: [Double], _ b: [Double], out: Int) -> [[Double]] {
        x.map { row in
            (0..<out).map { j in b[j] + row.indices.reduce(0.0) { $0 + row[$1] * w[$1 * out + j] } }
        }
    }

    private func gelu(_ x: Double) -> Double {
        0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    /// Logits [T][V] of one sequence.
    func logits(_ tokens: [Int32]) -> [[Double]] {
        let d = c.dModel, T = tokens.count, H = c.nHead, dh = c.dHead, V = c.vocabSize
        let wte = p["transformer.wte.weight"]!, wpe = p["transformer.wpe.weight"]!
        var x = (0..<T).map { t in (0..<d).map { wte[Int(tokens[t]) * d + $0] + wpe[t * d + $0] } }
        for l in 0..<c.nLayer {
            let h = "transformer.h.\(l)."
            let a = layerNorm(x, p[h + "ln_1.weight"]!, p[h + "ln_1.bias"]!)
            let qkv = linear(a, p[h + "attn.c_attn.weight"]!, p[h + "attn.c_attn.bias"]!, out: 3 * d)
            var z = [[Double]](repeating: [Double](repeating: 0, count: d), count: T)
            for head in 0..<H {
                for t in 0..<T {
                    var scores = (0...t).map { s in
                        (0..<dh).reduce(0.0) { $0 + qkv[t][head * dh + $1] * qkv[s][d + head * dh + $1] } / Double(dh).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let sum = scores.reduce(0, +)
                    for s in 0...t { for k in 0..<dh { z[t][head * dh + k] += scores[s] / sum * qkv[s][2 * d + head * dh + k] } }
                }
            }
            let attnOut = linear(z, p[h + "attn.c_proj.weight"]!, p[h + "attn.c_proj.bias"]!, out: d)
            for t in 0..<T { for i in 0..<d { x[t][i] += attnOut[t][i] } }
            let m = layerNorm(x, p[h + "ln_2.weight"]!, p[h + "ln_2.bias"]!)
            let fc = linear(m, p[h + "mlp.c_fc.weight"]!, p[h + "mlp.c_fc.bias"]!, out: c.dMLP).map { $0.map(gelu) }
            let mlpOut = linear(fc, p[h + "mlp.c_proj.weight"]!, p[h + "mlp.c_proj.bias"]!, out: d)
            for t in 0..<T { for i in 0..<d { x[t][i] += mlpOut[t][i] } }
        }
        let f = layerNorm(x, p["transformer.ln_f.weight"]!, p["transformer.ln_f.bias"]!)
        return f.map { row in (0..<V).map { v in (0..<d).reduce(0.0) { $0 + row[$1] * wte[v * d + $1] } } }
    }

    /// Weighted mean cross-entropy over a batch (tokens, targets, mask: [B·T]).
    func loss(tokens: [Int32], batch B: Int, seqLen T: Int, targets: [Int32], mask: [Float]) -> Double {
        var total = 0.0, weight = 0.0
        for b in 0..<B {
            let z = logits(Array(tokens[(b * T)..<((b + 1) * T)]))
            for t in 0..<T where mask[b * T + t] > 0 {
                let row = z[t], m = row.max()!
                let logSum = log(row.map { exp($0 - m) }.reduce(0, +)) + m
                total += Double(mask[b * T + t]) * (logSum - row[Int(targets[b * T + t])])
                weight += Double(mask[b * T + t])
            }
        }
        return total / weight
    }
}
