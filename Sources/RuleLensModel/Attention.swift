import RuleLensNumerics

/// Causal multi-head self-attention core (between c_attn and c_proj).
///
/// qkv [B, T, 3d] holds, per position, q | k | v, each split into heads as [H, dh] (Hugging Face's split).
/// scores = q·kᵀ/√dh with k_pos > q_pos masked, pattern = softmax(scores) [B, H, T, T],
/// z[b, t, h, :] = Σₖ pattern[b, h, t, k]·v[b, k, h, :] → z [B, T, H, dh] = [B, T, d].
/// Every product is one sgemm per (batch, head); the (batch, head) pairs are spread over the threads.
enum Attention {
    struct Dims {
        let B: Int, T: Int, H: Int, dh: Int
        var d: Int { H * dh }
        var scale: Float { 1 / Float(dh).squareRoot() }
        /// Per-(b, h) products small enough that OpenBLAS runs them single-threaded (its cut-off is
        /// m·n·k ≤ 4·65536); larger ones run one at a time with BLAS's own threads instead.
        var parallelOverHeads: Bool { T * T * dh <= 262_144 }
    }

    /// Value written into masked (k_pos > q_pos) entries of `hook_attn_scores`: −∞, as TransformerLens.
    static let maskedScore = -Float.infinity

    /// Runs `body(b, h)` for every (batch, head) pair, in parallel when the products are small.
    static func forEachHead(_ dims: Dims, _ body: (Int, Int) -> Void) {
        if dims.parallelOverHeads {
            // Our workers each run single-threaded OpenBLAS calls: BLAS threads here would only oversubscribe.
            BLAS.withThreads(1) {
                Parallel.forRanges(dims.B * dims.H) { i0, i1 in for i in i0..<i1 { body(i / dims.H, i % dims.H) } }
            }
        } else {
            for i in 0..<(dims.B * dims.H) { body(i / dims.H, i % dims.H) }
        }
    }

    /// Fused forward (no score/pattern hooks): scores, causal softmax and z for each head in one pass.
    static func forward(z: UnsafeMutablePointer<Float>, pattern: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, dims: Dims) {
        forEachHead(dims) { b, h in
            scores(pattern: pattern, qkv: qkv, b: b, h: h, dims: dims, writeMask: false)
            softmax(pattern: pattern, b: b, h: h, dims: dims, causalOnly: true)
            weightedValues(z: z, pattern: pattern, qkv: qkv, b: b, h: h, dims: dims)
        }
    }

    /// Phase 1 of the hooked forward: pattern ← scaled scores with −∞ above the diagonal (`hook_attn_scores`).
    static func scoresPhase(pattern: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, dims: Dims) {
        forEachHead(dims) { b, h in scores(pattern: pattern, qkv: qkv, b: b, h: h, dims: dims, writeMask: true) }
    }

    /// Phase 2: softmax over each full row in place (masked entries are −∞ unless a hook edited them).
    static func softmaxPhase(pattern: UnsafeMutablePointer<Float>, dims: Dims) {
        forEachHead(dims) { b, h in softmax(pattern: pattern, b: b, h: h, dims: dims, causalOnly: false) }
    }

    /// Phase 3: z = pattern · v.
    static func valuesPhase(z: UnsafeMutablePointer<Float>, pattern: UnsafePointer<Float>, qkv: UnsafePointer<Float>, dims: Dims) {
        forEachHead(dims) { b, h in weightedValues(z: z, pattern: pattern, qkv: qkv, b: b, h: h, dims: dims) }
    }

    @inline(__always)
    private static func scores(pattern: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, b: Int, h: Int, dims: Dims, writeMask: Bool) {
        let (T, d) = (dims.T, dims.d)
        let q = qkv + b * T * 3 * d + h * dims.dh, k = q + d
        let s = pattern + (b * dims.H + h) * T * T
        // s[T, T] = scale · q[T, dh] · k[T, dh]ᵀ   (q, k rows strided by 3d)
        BLAS.sgemm(.none, .transposed, m: T, n: T, k: dims.dh, alpha: dims.scale, q, lda: 3 * d, k, ldb: 3 * d, s)
        if writeMask {
            for t in 0..<T { for j in (t + 1)..<T { s[t * T + j] = maskedScore } }
        }
    }

    @inline(__always)
    private static func softmax(pattern: UnsafeMutablePointer<Float>, b: Int, h: Int, dims: Dims, causalOnly: Bool) {
        let T = dims.T
        let p = pattern + (b * dims.H + h) * T * T
        for t in 0..<T {
            let row = p + t * T
            let end = causalOnly ? t + 1 : T
            var maxScore = -Float.infinity
            for j in 0..<end { maxScore = max(maxScore, row[j]) }
            var sum: Float = 0
            for j in 0..<end { let e = FastMath.expNonPositive(row[j] - maxScore); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<end { row[j] *= inv }
            for j in end..<T { row[j] = 0 }
        }
    }

    @inline(__always)
    private static func weightedValues(z: UnsafeMutablePointer<Float>, pattern: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                                       b: Int, h: Int, dims: Dims) {
        let (T, d) = (dims.T, dims.d)
        let v = qkv + b * T * 3 * d + 2 * d + h * dims.dh
        let p = pattern + (b * dims.H + h) * T * T
        // z_h[T, dh] = p[T, T] · v[T, dh]   (written with row stride d into z [B, T, H, dh])
        BLAS.sgemm(.none, .none, m: T, n: dims.dh, k: T, p, v, ldb: 3 * d, z + b * T * d + h * dims.dh, ldc: d)
    }

    /// Backward: dqkv [B, T, 3d] (overwritten) from dz [B, T, d], using the saved pattern; dpattern [B, H, T, T] is scratch.
    static func backward(dqkv: UnsafeMutablePointer<Float>, dpattern: UnsafeMutablePointer<Float>, dz: UnsafePointer<Float>,
                         qkv: UnsafePointer<Float>, pattern: UnsafePointer<Float>, dims: Dims) {
        let (T, d, dh) = (dims.T, dims.d, dims.dh)
        forEachHead(dims) { b, h in
            let q = qkv + b * T * 3 * d + h * dh, k = q + d, v = q + 2 * d
            let dq = dqkv + b * T * 3 * d + h * dh, dk = dq + d, dv = dq + 2 * d
            let p = pattern + (b * dims.H + h) * T * T, dp = dpattern + (b * dims.H + h) * T * T
            let dzh = dz + b * T * d + h * dh
            // dp[T, T] = dz_h[T, dh] · v[T, dh]ᵀ
            BLAS.sgemm(.none, .transposed, m: T, n: T, k: dh, dzh, lda: d, v, ldb: 3 * d, dp)
            // dv[T, dh] = pᵀ · dz_h
            BLAS.sgemm(.transposed, .none, m: T, n: dh, k: T, p, lda: T, dzh, ldb: d, dv, ldc: 3 * d)
            // softmax backward in place: ds = p ⊙ (dp − Σⱼ pⱼ·dpⱼ); zero above the diagonal
            for t in 0..<T {
                let pr = p + t * T, dr = dp + t * T
                var dot: Float = 0
                for j in 0...t { dot += pr[j] * dr[j] }
                for j in 0...t { dr[j] = pr[j] * (dr[j] - dot) }
                for j in (t + 1)..<T { dr[j] = 0 }
            }
            // dq = scale · ds · k ; dk = scale · dsᵀ · q
            BLAS.sgemm(.none, .none, m: T, n: dh, k: T, alpha: dims.scale, dp, k, ldb: 3 * d, dq, ldc: 3 * d)
            BLAS.sgemm(.transposed, .none, m: T, n: dh, k: T, alpha: dims.scale, dp, lda: T, q, ldb: 3 * d, dk, ldc: 3 * d)
        }
    }
}
