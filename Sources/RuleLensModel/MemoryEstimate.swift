import Foundation
import RuleLensNumerics

/// How much memory a request will take, computed from shapes alone before anything is allocated, and the check
/// that refuses what the machine cannot hold (with the estimate and the fix) instead of dying in the allocator
/// or being OOM-killed part-way.
///
/// The figures mirror what the code allocates: `GPT` holds parameters and a same-sized gradient buffer; training
/// adds AdamW's two moments; a forward pass keeps the buffers of `Activations` (every layer's when activations are
/// retained for backward, one layer's for inference), a backward pass adds the gradient scratch. Sizes use
/// saturating arithmetic, so absurd shapes (`n_positions: 1e18`) give a huge estimate, never an overflow trap.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    /// Labelled parts in bytes (e.g. "parameters and gradients", "activations").
    public var parts: [(label: String, bytes: Int)]
    /// Sum of the parts.
    public var total: Int { parts.reduce(0) { $0.addingSaturating($1.bytes) } }

    public init(parts: [(label: String, bytes: Int)] = []) { self.parts = parts }

    /// "1.2 GB (parameters and gradients 0.8 GB, activations 0.4 GB)".
    public var description: String {
        "\(Self.format(total)) (" + parts.map { "\($0.label) \(Self.format($0.bytes))" }.joined(separator: ", ") + ")"
    }

    // MARK: Model sizes

    /// Parameter count of a configuration (saturating).
    public static func parameterCount(_ c: GPTConfig) -> Int {
        let d = c.dModel
        // Per block: ln_1, ln_2 (2d each), c_attn (d·3d + 3d), attn.c_proj (d·d + d), c_fc (d·dMLP + dMLP), mlp.c_proj (dMLP·d + d).
        let block = d.multipliedSaturating(4)
            .addingSaturating(d.multipliedSaturating(d).multipliedSaturating(4))
            .addingSaturating(d.multipliedSaturating(5))
            .addingSaturating(d.multipliedSaturating(c.dMLP).multipliedSaturating(2))
            .addingSaturating(c.dMLP)
        return c.vocabSize.multipliedSaturating(d)
            .addingSaturating(c.nCtx.multipliedSaturating(d))
            .addingSaturating(block.multipliedSaturating(c.nLayer))
            .addingSaturating(d.multipliedSaturating(2))
            .addingSaturating(c.tiedHead ? 0 : c.vocabSize.multipliedSaturating(d))   // an untied lm_head.weight
    }

    /// Floats of the forward buffers (`Activations.ensureForward`) for `batch` × `seqLen` with `layerSlots` layers.
    static func forwardFloats(_ c: GPTConfig, batch B: Int, seqLen T: Int, layerSlots slots: Int, hooks: Bool) -> Int {
        let N = B.multipliedSaturating(T), d = c.dModel
        let L = Swift.min(slots, 1 << 40)   // keeps 2L + 1 and 4L exact; larger counts saturate below anyway
        let Nd = N.multipliedSaturating(d)
        var f = Nd.multipliedSaturating(slots == c.nLayer ? 2 * L + 1 : 3)                  // resid
        f = f.addingSaturating(Nd.multipliedSaturating(L))                                  // ln1
        f = f.addingSaturating(N.multipliedSaturating(4 * L))                               // ln1/ln2 mean, rstd
        f = f.addingSaturating(Nd.multipliedSaturating(3 * L))                              // qkv
        f = f.addingSaturating(B.multipliedSaturating(c.nHead).multipliedSaturating(T).multipliedSaturating(T).multipliedSaturating(L)) // pattern
        f = f.addingSaturating(Nd.multipliedSaturating(2 * L))                              // z, ln2
        f = f.addingSaturating(N.multipliedSaturating(c.dMLP).multipliedSaturating(2 * L))  // fc pre/post
        f = f.addingSaturating(Nd.multipliedSaturating(3)).addingSaturating(N.multipliedSaturating(2)) // lnf, attnOut, mlpOut
        f = f.addingSaturating(N.multipliedSaturating(c.vocabSize))                        // logits
        if hooks { f = f.addingSaturating(Nd.multipliedSaturating(2)) }                     // hook scratch
        return f
    }

    /// Floats of the backward scratch (`Activations.ensureBackward`).
    static func backwardFloats(_ c: GPTConfig, batch B: Int, seqLen T: Int) -> Int {
        let N = B.multipliedSaturating(T), d = c.dModel
        return N.multipliedSaturating(c.vocabSize)
            .addingSaturating(N.multipliedSaturating(d).multipliedSaturating(6))
            .addingSaturating(N.multipliedSaturating(c.dMLP))
            .addingSaturating(B.multipliedSaturating(c.nHead).multipliedSaturating(T).multipliedSaturating(T))
    }

    /// Training: parameters, gradients, AdamW moments, activations retained for backward and the backward scratch,
    /// plus the batch arrays (inputs, targets, loss mask).
    public static func training(_ c: GPTConfig, batch: Int, seqLen: Int) -> MemoryEstimate {
        let p = parameterCount(c)
        let acts = forwardFloats(c, batch: batch, seqLen: seqLen, layerSlots: c.nLayer, hooks: false)
            .addingSaturating(backwardFloats(c, batch: batch, seqLen: seqLen))
            .addingSaturating(batch.multipliedSaturating(seqLen).multipliedSaturating(3))
        return MemoryEstimate(parts: [("parameters, gradients and AdamW moments", p.multipliedSaturating(16)),
                                      ("activations for batch \(batch) × \(seqLen) positions", acts.multipliedSaturating(4))])
    }

    /// Inference (eval, logits, dump, probes): parameters and the gradient buffer `GPT` allocates, one layer's
    /// forward buffers, and `extraBytes` the job keeps besides (staging rows, collected logits).
    public static func inference(_ c: GPTConfig, batch: Int, seqLen: Int, hooks: Bool = false, extraBytes: Int = 0,
                                 extraLabel: String = "outputs held in memory") -> MemoryEstimate {
        let p = parameterCount(c)
        var e = MemoryEstimate(parts: [("parameters and gradient buffer", p.multipliedSaturating(8)),
                                       ("activations for batch \(batch) × \(seqLen) positions",
                                        forwardFloats(c, batch: batch, seqLen: seqLen, layerSlots: 1, hooks: hooks).multipliedSaturating(4))])
        if extraBytes > 0 { e.parts.append((extraLabel, extraBytes)) }
        return e
    }

    /// Just the model (`GPT` allocates parameters and gradients when it is built, e.g. on load).
    public static func model(_ c: GPTConfig) -> MemoryEstimate {
        MemoryEstimate(parts: [("parameters and gradient buffer", parameterCount(c).multipliedSaturating(8))])
    }

    /// A percentile bootstrap's plan: `resamples` × `examples` drawn indices (Int32) and one mean per resample.
    public static func bootstrap(resamples: Int, examples: Int) -> MemoryEstimate {
        MemoryEstimate(parts: [("bootstrap draws (\(resamples) resamples × \(examples) examples)",
                                resamples.multipliedSaturating(examples).multipliedSaturating(4).addingSaturating(resamples.multipliedSaturating(8)))])
    }

    /// Analyses of an [n, d] matrix held in memory: the matrix in float32, plus `copies` square matrices of
    /// `squareOf` × `squareOf` doubles when the analysis builds one (a d × d scatter or covariance with its
    /// eigenvectors and workspace: 3; an n × n kernel: 1).
    public static func analysis(rows n: Int, cols d: Int, squareOf side: Int = 0, copies: Int = 3, label: String = "square matrix") -> MemoryEstimate {
        var e = MemoryEstimate(parts: [("the data [\(n), \(d)]", n.multipliedSaturating(d).multipliedSaturating(4))])
        if side > 0 { e.parts.append(("\(label) [\(side), \(side)] × \(copies)", side.multipliedSaturating(side).multipliedSaturating(8 * copies))) }
        return e
    }

    // MARK: The machine

    /// Bytes this process can still allocate: `RULELENS_MEMORY_LIMIT` when set (bytes, or with a K/M/G/T suffix),
    /// otherwise the smaller of the kernel's MemAvailable and the room left under the cgroup's memory.max.
    /// nil when neither can be read (the check then passes).
    public static func available() -> Int? {
        if let text = ProcessInfo.processInfo.environment["RULELENS_MEMORY_LIMIT"], let v = parseBytes(text) { return v }
        var best: Int? = nil
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let fields = line.split(separator: " ")
                if fields.count >= 2, let kb = Int(fields[1]) { best = kb * 1024 }
            }
        }
        if let maxText = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
           let limit = Int(maxText.trimmingCharacters(in: .whitespacesAndNewlines)) {
            let used = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.current", encoding: .utf8))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            let room = max(0, limit - used)
            best = best.map { min($0, room) } ?? room
        }
        return best
    }

    /// "123", "512M", "2G", "1.5T" → bytes.
    public static func parseBytes(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let scale: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
        if let last = t.last, let s = scale[last], let v = Double(t.dropLast()), v >= 0 { return Int(v * s) }
        return Int(t)
    }

    /// "1.23 GB", "512.0 MB", "12 kB".
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if bytes == Int.max { return "more than 9 EB" }
        if b >= 1e12 { return String(format: "%.1f TB", b / 1e12) }
        if b >= 1e9 { return String(format: "%.2f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.1f MB", b / 1e6) }
        return String(format: "%.0f kB", b / 1e3)
    }

    /// Throws when the estimate exceeds what `available()` reports: the error says what needs how much, what the
    /// machine has, and `fix`.
    public func require(_ what: String, fix: String) throws {
        guard let room = Self.available(), total > room else { return }
        throw RuleLensError("\(what) needs about \(self), more than the \(Self.format(room)) of memory available",
                            fix: fix + " (RULELENS_MEMORY_LIMIT overrides the detected limit)")
    }

    /// The largest batch in 1…`batch` whose estimate fits the available memory (nil when even 1 does not).
    public static func largestBatch(upTo batch: Int, _ estimate: (Int) -> MemoryEstimate) -> Int? {
        guard let room = available() else { return batch }
        var lo = 0, hi = max(1, batch)
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if estimate(mid).total <= room { lo = mid } else { hi = mid - 1 }
        }
        return lo > 0 ? lo : nil
    }
}

extension Int {
    /// a + b, clamped to Int.max (sizes are non-negative).
    public func addingSaturating(_ other: Int) -> Int {
        let (r, o) = addingReportingOverflow(other)
        return o ? Int.max : r
    }
    /// a × b, clamped to Int.max (sizes are non-negative).
    public func multipliedSaturating(_ other: Int) -> Int {
        let (r, o) = multipliedReportingOverflow(by: other)
        return o ? Int.max : r
    }
}
