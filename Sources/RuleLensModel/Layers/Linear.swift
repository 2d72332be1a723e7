import RuleLensNumerics

/// How a weight matrix is stored.
enum WeightLayout {
    /// [in, out]: Hugging Face's Conv1D (GPT-2's c_attn, c_proj, c_fc).
    case inOut
    /// [out, in]: `torch.nn.Linear` (Llama/Qwen2 projections, the VAE's latent heads).
    case outIn
    var blas: BLAS.Transpose { self == .inOut ? .none : .transposed }
}

/// Affine layer: out[N, OC] = inp[N, C] · W + bias[OC], W stored [C, OC] (`.inOut`, GPT-2's Conv1D) or [OC, C]
/// (`.outIn`, nn.Linear; then the product is inp · Wᵀ).
enum Linear {
    /// out[N, OC] = inp[N, C] · W + bias[OC] (bias broadcast first, then one sgemm with beta 1).
    /// Products run as `BLAS.sgemmSplit`: one single-threaded OpenBLAS call per worker (no BLAS thread hand-offs).
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        rows N: Int, inDim C: Int, outDim OC: Int, layout: WeightLayout = .inOut) {
        if let bias {
            Parallel.forRanges(N, minPerThread: 64) { r0, r1 in
                for n in r0..<r1 { (out + n * OC).update(from: bias, count: OC) }
            }
        }
        BLAS.sgemmSplit(.none, layout.blas, m: N, n: OC, k: C, inp, weight, beta: bias == nil ? 0 : 1, out)
    }

    /// Backward of `forward`, accumulating into the parameter gradients:
    /// dinp[N, C] (= or +=) dout[N, OC] · Wᵀ; dW += inp[N, C]ᵀ · dout[N, OC] (`.inOut`) or doutᵀ · inp (`.outIn`);
    /// dbias[OC] += Σₙ dout[n, :].
    static func backward(dinp: UnsafeMutablePointer<Float>?, accumulateInput: Bool,
                         dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         rows N: Int, inDim C: Int, outDim OC: Int, layout: WeightLayout = .inOut) {
        switch layout {
        case .inOut:
            if let dinp { BLAS.sgemmSplit(.none, .transposed, m: N, n: C, k: OC, dout, weight, beta: accumulateInput ? 1 : 0, dinp) }
            BLAS.sgemmSplit(.transposed, .none, m: C, n: OC, k: N, inp, dout, beta: 1, dweight)
        case .outIn:
            if let dinp { BLAS.sgemmSplit(.none, .none, m: N, n: C, k: OC, dout, weight, beta: accumulateInput ? 1 : 0, dinp) }
            BLAS.sgemmSplit(.transposed, .none, m: OC, n: C, k: N, dout, inp, beta: 1, dweight)
        }
        if let dbias { Reduce.addColumnSums(into: dbias, dout, rows: N, cols: OC) }
    }
}

/// Deterministic reductions: the summation order never depends on the thread count or scheduling.
enum Reduce {
    /// sums[c] += Σₙ x[n, c] for x [rows, cols]; threads own column ranges, rows are summed in order.
    static func addColumnSums(into sums: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
        Parallel.forRanges(cols, minPerThread: 128) { c0, c1 in
            for n in 0..<rows {
                let row = x + n * cols
                for c in c0..<c1 { sums[c] += row[c] }
            }
        }
    }

    /// Number of row chunks for per-chunk partial sums: fixed by the row count alone, so partial sums
    /// (and their ordered reduction) are the same whatever the thread count.
    static func chunks(rows: Int) -> Int { max(1, min(16, rows / 32)) }
}
