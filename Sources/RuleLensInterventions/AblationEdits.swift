import RuleLensModel
import RuleLensNumerics

/// How an ablated component's output is replaced.
public enum AblationMethod: String, Sendable, CaseIterable {
    /// By zeros (TransformerLens's zero ablation).
    case zero
    /// By its mean over a reference set at each position.
    case mean
    /// By its value in another example of the reference set at the same position (seeded draw per example).
    case resample
}

/// Which positions an ablation touches.
public enum AblationPositions: Sendable, Equatable {
    /// Every position (prompt and generated tokens).
    case all
    /// One position: K ≥ 0 counts from the start (`<bos>` is 0); K < 0 counts back from the end of `[bos] + prompt`
    /// (−1 = the last prompt position, whose logits predict the first answer token: `answer`).
    case index(Int)

    /// The position in an example with `promptLength` = |[bos] + prompt|.
    func position(promptLength: Int) -> Int {
        switch self {
        case .all: return -1
        case .index(let k): return k >= 0 ? k : promptLength + k
        }
    }
}

/// The component an ablation replaces: a layer's attention output, its MLP output, or one head.
public struct AblationCell: Sendable, Equatable, Hashable {
    public enum Component: String, Sendable, CaseIterable { case attn, mlp, head }
    public let layer: Int
    public let component: Component
    /// The head, for `.head`.
    public let head: Int?
    /// The stack's hook prefix: "" (the model's own blocks) or "encoder." (a language VAE's encoder).
    public let stack: String
    public init(layer: Int, component: Component, head: Int? = nil, stack: String = "") {
        self.layer = layer; self.component = component; self.head = head; self.stack = stack
    }
    /// The hook site edited: `hook_attn_out`, `hook_mlp_out`, or `attn.hook_z` (one head's slice), under `stack`.
    public var site: String {
        switch component {
        case .attn: return "\(stack)blocks.\(layer).hook_attn_out"
        case .mlp: return "\(stack)blocks.\(layer).hook_mlp_out"
        case .head: return "\(stack)blocks.\(layer).attn.hook_z"
        }
    }
    /// "L0 attn", "L1 mlp", "L1 H2"; an encoder's "enc L0 mlp".
    public var name: String {
        (stack == "encoder." ? "enc " : stack) + (component == .head ? "L\(layer) H\(head!)" : "L\(layer) \(component.rawValue)")
    }
}

/// A site's clean values on the reference set, per example and position, for one cell (one head's slice for z).
struct SiteReference {
    /// Values per position (d_model, or d_head for one head).
    let width: Int
    /// Padded length of `values`.
    let seqLen: Int
    /// [N, seqLen, width].
    let values: [Float]
    /// Each reference example's real length.
    let lengths: [Int]
    /// Mean per position over the examples covering it: [seqLen, width]; `covered[p]` how many.
    let mean: [Float]
    let covered: [Int]

    /// One clean teacher-forced pass over `items` caching `cell`'s site.
    static func record(_ model: InterventionModel, items: [InterventionItem], cell: AblationCell, geometry g: InterventionGeometry,
                       batchSize: Int) -> SiteReference {
        let width = cell.component == .head ? g.dHead : g.dModel
        let seqLen = items.map(\.inputLength).max() ?? 1
        var values = [Float](repeating: 0, count: items.count * seqLen * width)
        let hooks = HookSet()
        let context = RowContext()
        hooks.observe([cell.site]) { _, v, shape in
            // shape [B, T, d] or [B, T, H, dh]
            let T = shape[1], perPos = shape.dropFirst(2).reduce(1, *)
            let offset = cell.component == .head ? cell.head! * g.dHead : 0
            for (row, i) in context.rows.enumerated() {
                for t in 0..<min(T, items[i].inputLength) {
                    let src = v + (row * T + t) * perPos + offset
                    for k in 0..<width { values[(i * seqLen + t) * width + k] = src[k] }
                }
            }
        }
        inference(model) {
            for chunk in chunks(items.count, batchSize) {
                let (tokens, T) = paddedInputs(items, chunk)
                context.rows = chunk
                _ = model.forward(tokens: tokens, batch: chunk.count, seqLen: T, hooks: hooks)
            }
        }
        return summarise(values: values, lengths: items.map(\.inputLength), seqLen: seqLen, width: width)
    }

    /// The per-position mean over the examples covering each position, from values [N, seqLen, width].
    static func summarise(values: [Float], lengths: [Int], seqLen: Int, width: Int) -> SiteReference {
        var sums = [Double](repeating: 0, count: seqLen * width)
        var covered = [Int](repeating: 0, count: seqLen)
        for (i, length) in lengths.enumerated() {
            for t in 0..<min(length, seqLen) {
                covered[t] += 1
                for k in 0..<width { sums[t * width + k] += Double(values[(i * seqLen + t) * width + k]) }
            }
        }
        var mean = [Float](repeating: 0, count: seqLen * width)
        for t in 0..<seqLen where covered[t] > 0 { for k in 0..<width { mean[t * width + k] = Float(sums[t * width + k] / Double(covered[t])) } }
        return SiteReference(width: width, seqLen: seqLen, values: values, lengths: lengths, mean: mean, covered: covered)
    }
}

/// Registers the edit that ablates `cell` on `hooks`. `context.rows` must name the examples of each forward's rows.
/// Resample donors: `donors[i]` is the reference example whose values replace example i's.
func registerAblation(_ hooks: HookSet, cell: AblationCell, method: AblationMethod, positions: AblationPositions,
                      items: [InterventionItem], reference: SiteReference?, donors: [Int]?, context: RowContext, geometry g: InterventionGeometry) {
    let width = cell.component == .head ? g.dHead : g.dModel
    let headOffset = cell.component == .head ? cell.head! * g.dHead : 0
    hooks.edit([cell.site]) { [unowned hooks] _, v, shape in
        // The values hold positions first..<first+T: all of them in a forward pass, the new ones in a cached decode step.
        let T = shape[1], perPos = shape.dropFirst(2).reduce(1, *), first = hooks.firstPosition
        for (row, i) in context.rows.enumerated() {
            let range: Range<Int>
            if case .all = positions { range = first..<(first + T) } else {
                let p = positions.position(promptLength: items[i].promptLength)
                guard p >= first && p < first + T else { continue }
                range = p..<(p + 1)
            }
            for t in range {
                let dst = v + (row * T + t - first) * perPos + headOffset
                switch method {
                case .zero:
                    dst.update(repeating: 0, count: width)
                case .mean:
                    // Positions no reference example reaches keep their value (only past every answer).
                    guard let r = reference, t < r.seqLen, r.covered[t] > 0 else { continue }
                    for k in 0..<width { dst[k] = r.mean[t * width + k] }
                case .resample:
                    guard let r = reference, let donor = donors?[i], t < r.lengths[donor] else { continue }
                    for k in 0..<width { dst[k] = r.values[(donor * r.seqLen + t) * width + k] }
                }
            }
        }
    }
}

/// Seeded resample donors: for each example i, a reference example j covering i's length (j ≠ i when the
/// reference is the data itself). Nil (with the example) when some example has no possible donor.
func resampleDonors(items: [InterventionItem], referenceLengths: [Int], sameSet: Bool, seed: UInt64, stream: String) -> (donors: [Int]?, failed: Int?) {
    var rng = SeededRNG(seed: seed, stream: "resample:" + stream)
    var donors: [Int] = []
    donors.reserveCapacity(items.count)
    for (i, item) in items.enumerated() {
        let eligible = referenceLengths.indices.filter { referenceLengths[$0] >= item.inputLength && !(sameSet && $0 == i) }
        guard !eligible.isEmpty else { return (nil, i) }
        donors.append(eligible[rng.int(below: eligible.count)])
    }
    return (donors, nil)
}
