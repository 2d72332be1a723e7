import RuleLensNumerics

/// Token + learned position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :].
enum Embedding {
    /// out [B, T, d]. `tokenEmbed`/`posEmbed` (each [B, T, d]) are filled too when given, and then the sum is
    /// taken from them, so hook edits on `hook_embed`/`hook_pos_embed` flow downstream.
    static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                        wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, batch B: Int, seqLen T: Int, dModel d: Int) {
        Parallel.forRanges(B * T, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                let tokenRow = wte + Int(tokens[n]) * d, posRow = wpe + (n % T) * d, o = out + n * d
                for i in 0..<d { o[i] = tokenRow[i] + posRow[i] }
            }
        }
    }

    /// The two halves separately (for hooks): tokenEmbed[n] = wte[token], posEmbed[n] = wpe[t].
    static func lookup(tokenEmbed: UnsafeMutablePointer<Float>, posEmbed: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                       wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, batch B: Int, seqLen T: Int, dModel d: Int) {
        Parallel.forRanges(B * T, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 {
                (tokenEmbed + n * d).update(from: wte + Int(tokens[n]) * d, count: d)
                (posEmbed + n * d).update(from: wpe + (n % T) * d, count: d)
            }
        }
    }

    /// out = tokenEmbed + posEmbed (same arithmetic as `forward`).
    static func sum(out: UnsafeMutablePointer<Float>, tokenEmbed: UnsafePointer<Float>, posEmbed: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minPerThread: 4096) { i0, i1 in
            for i in i0..<i1 { out[i] = tokenEmbed[i] + posEmbed[i] }
        }
    }

    /// dwte[token] += dout[n], dwpe[t] += dout[n]. Threads own column ranges, so repeated tokens
    /// accumulate in row order (deterministic).
    static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         tokens: UnsafePointer<Int32>, batch B: Int, seqLen T: Int, dModel d: Int) {
        Parallel.forRanges(d, minPerThread: 32) { c0, c1 in
            for n in 0..<(B * T) {
                let dy = dout + n * d, dTok = dwte + Int(tokens[n]) * d, dPos = dwpe + (n % T) * d
                for i in c0..<c1 { dTok[i] += dy[i]; dPos[i] += dy[i] }
            }
        }
    }

    /// Token embedding only (families without learned positions): out[n, :] = wte[tokens[n], :] for n in 0..<rows.
    static func lookupTokens(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
                             rows N: Int, dModel d: Int) {
        Parallel.forRanges(N, minPerThread: 16) { r0, r1 in
            for n in r0..<r1 { (out + n * d).update(from: wte + Int(tokens[n]) * d, count: d) }
        }
    }

    /// Backward of `lookupTokens`: dwte[tokens[n]] += dout[n]. Threads own column ranges, so repeated tokens
    /// accumulate in row order (deterministic).
    static func backwardTokens(dwte: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                               rows N: Int, dModel d: Int) {
        Parallel.forRanges(d, minPerThread: 32) { c0, c1 in
            for n in 0..<N {
                let dy = dout + n * d, dTok = dwte + Int(tokens[n]) * d
                for i in c0..<c1 { dTok[i] += dy[i] }
            }
        }
    }
}
