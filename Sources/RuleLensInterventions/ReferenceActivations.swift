import RuleLensModel
import RuleLensNumerics

/// Clean activations of a reference set that were recorded elsewhere (an activation dump of `rulelens dump
/// --positions all`), for mean and resample ablation without rerunning the reference set.
public struct ReferenceActivations: @unchecked Sendable {
    /// Examples in the reference set.
    public let count: Int
    /// Padded positions per example in `values` (T).
    public let seqLen: Int
    /// Input positions of each example: the positions a teacher-forced pass of `[bos] + prompt + target` reads
    /// (a dump feeds the eos too; that last position is not counted, as with a JSONL reference).
    public let lengths: [Int]
    /// Where the values come from (for messages), e.g. the file path.
    public let origin: String
    /// The values of one site, [count, seqLen, width] (width = the site's per-position size).
    public let values: (String) throws -> [Float]

    public init(count: Int, seqLen: Int, lengths: [Int], origin: String, values: @escaping (String) throws -> [Float]) {
        precondition(lengths.count == count, "ReferenceActivations: \(lengths.count) lengths for \(count) examples")
        self.count = count; self.seqLen = seqLen; self.lengths = lengths; self.origin = origin; self.values = values
    }
}

extension SiteReference {
    /// The reference of `cell` from recorded activations (one head's slice of z for a head).
    static func from(_ r: ReferenceActivations, cell: AblationCell, geometry g: InterventionGeometry) throws -> SiteReference {
        let all = try r.values(cell.site)
        let perPos = cell.component == .head ? g.nHead * g.dHead : g.dModel
        guard all.count == r.count * r.seqLen * perPos else {
            throw RuleLensError("\(cell.site) in \(r.origin) holds \(all.count) values, but \(r.count) examples × \(r.seqLen) positions × \(perPos) need \(r.count * r.seqLen * perPos)",
                                fix: "dump the reference set from this checkpoint with --positions all")
        }
        let width = cell.component == .head ? g.dHead : g.dModel
        let offset = cell.component == .head ? cell.head! * g.dHead : 0
        let seqLen = max(1, r.lengths.max() ?? 1)
        var values = [Float](repeating: 0, count: r.count * seqLen * width)
        for i in 0..<r.count {
            for t in 0..<min(r.lengths[i], r.seqLen) {
                let src = (i * r.seqLen + t) * perPos + offset
                for k in 0..<width { values[(i * seqLen + t) * width + k] = all[src + k] }
            }
        }
        return SiteReference.summarise(values: values, lengths: r.lengths, seqLen: seqLen, width: width)
    }
}
