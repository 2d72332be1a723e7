import Foundation
import RuleLensInterventions
import RuleLensNumerics
import RuleLensReport
import RuleLensTasks

/// Options of `rulelens patch`.
public struct PatchOptions: Sendable {
    public var checkpoint: String
    public var clean: String
    public var corrupt: String
    public var sites: [PatchSite] = [.residPre, .residMid, .attnOut, .mlpOut, .z]
    public var out: String? = nil
    public var plot: String? = nil
    public var force = false
    public var quiet = false
    public var batchSize = 512
    public init(checkpoint: String, clean: String, corrupt: String) { self.checkpoint = checkpoint; self.clean = clean; self.corrupt = corrupt }
}

/// `rulelens patch`: activation patching, as TransformerLens's `patching` module.
public enum PatchJob {
    /// Reads the pairs: line i of `clean` with line i of `corrupt`, each `[bos] + prompt` and its first answer token.
    public static func pairs(clean: String, corrupt: String, tokenizer: any TextTokenizer) throws -> [PatchPair] {
        let a = try JSONL.readExamples(path: clean), b = try JSONL.readExamples(path: corrupt)
        guard a.count == b.count else {
            throw RuleLensError("\(clean) has \(a.count) lines but \(corrupt) has \(b.count): pairs are line by line",
                                fix: "give two files of equal length (line i of --corrupt is the counterpart of line i of --clean), e.g. from `rulelens data pairs`")
        }
        guard !a.isEmpty else { throw RuleLensError("\(clean) has no examples", fix: "give at least one pair") }
        var out: [PatchPair] = []
        for i in a.indices {
            let x = try tokenizer.encode(a[i].prompt, context: "line \(i + 1) of \(clean)")
            let y = try tokenizer.encode(b[i].prompt, context: "line \(i + 1) of \(corrupt)")
            guard x.count == y.count else {
                throw RuleLensError("line \(i + 1): the clean prompt has \(x.count) tokens and the corrupted one \(y.count)",
                                    fix: "a pair's prompts must have equal token lengths (patching aligns positions); fix or drop line \(i + 1)")
            }
            guard let ca = try tokenizer.encode(a[i].target, context: "line \(i + 1) of \(clean)").first,
                  let cb = try tokenizer.encode(b[i].target, context: "line \(i + 1) of \(corrupt)").first else {
                throw RuleLensError("line \(i + 1) has an empty target", fix: "each line needs a target: its first token is the answer the metric compares")
            }
            out.append(PatchPair(clean: [tokenizer.bos] + x, corrupt: [tokenizer.bos] + y, cleanAnswer: ca, corruptAnswer: cb))
        }
        if let first = out.first, let i = out.firstIndex(where: { $0.clean.count != first.clean.count }) {
            throw RuleLensError("line \(i + 1) has a \(out[i].clean.count - 1)-token prompt but line 1 has \(first.clean.count - 1): the [layer, position] matrices need one prompt length",
                                fix: "keep pairs of one prompt length (`rulelens data pairs --one-length`)")
        }
        return out
    }

    public static func run(_ o: PatchOptions) throws -> ProbeReport {
        try InterventionSupport.refuseExisting([o.out, o.plot], force: o.force)
        guard !o.sites.isEmpty else { throw RuleLensError("no --sites given", fix: "pass e.g. --sites resid_pre,attn_out") }
        let (model, tokenizer) = try InterventionSupport.load(o.checkpoint)
        let pairs = try pairs(clean: o.clean, corrupt: o.corrupt, tokenizer: tokenizer)
        let line = ProgressLine(enabled: !o.quiet)
        let tick = InterventionSupport.progress(line, "patch", "cells")
        let start = ProgressLine.now()
        let result = try Patching.sweep(model, pairs: pairs, sites: o.sites, batchSize: o.batchSize) { tick($0, $1, "") }
        let seconds = ProgressLine.now() - start
        let positionLabels = pairs[0].clean.enumerated().map { "\($0) \(tokenText(tokenizer, $1))" }
        func nested(_ m: PatchMatrix, _ v: [Double]) -> [[Any]] {
            (0..<m.rows).map { r in (0..<m.cols).map { InterventionSupport.number(v[r * m.cols + $0]) } }
        }
        var sites: [String: Any] = [:]
        for m in result.matrices {
            sites[m.site.rawValue] = ["logit_diff": nested(m, m.logitDiff), "normalized": nested(m, m.normalized),
                                      "dims": m.site == .z ? ["layer", "head"] : ["layer", "position"]]
        }
        // With equal baselines (e.g. identical clean and corrupt prompts) recovery divides by zero: no number.
        let undefined = result.cleanBaseline == result.corruptBaseline
        let normalizedNote: Any = undefined
            ? "null: the clean and corrupt logit differences are equal (\(result.cleanBaseline)), so (patched − corrupt)/(clean − corrupt) is undefined; read logit_diff, or use pairs whose corruption changes the answer"
            : NSNull()
        let json: [String: Any] = [
            "normalized_undefined": normalizedNote,
            "checkpoint": o.checkpoint, "clean_file": o.clean, "corrupt_file": o.corrupt, "pairs": result.pairs,
            "positions": result.seqLen, "position_tokens": positionLabels,
            "clean": result.cleanBaseline, "corrupt": result.corruptBaseline, "sites": sites,
            "metric": "logit[clean's first answer token] - logit[corrupt's first answer token] at the last prompt position, mean over pairs",
        ]   // the time is in the table only: the JSON is reproducible bit for bit
        var lines = [String(format: "%d pairs, %d positions; logit diff clean %.4f, corrupt %.4f (%.2f s)", result.pairs, result.seqLen,
                            result.cleanBaseline, result.corruptBaseline, seconds)]
        for m in result.matrices {
            lines.append("")
            lines.append("\(m.site.rawValue): normalised (patched − corrupt)/(clean − corrupt), rows = layers")
            let header = m.site == .z ? (0..<m.cols).map { "H\($0)" } : positionLabels
            var t = TextTable(["layer"] + header)
            for r in 0..<m.rows { t.add(["\(r)"] + (0..<m.cols).map { fmt(m.normalized[r * m.cols + $0], 3) }) }
            lines.append(t.render())
        }
        if undefined, let note = normalizedNote as? String { lines.append(""); lines.append("normalised values: " + note) }
        var report = ProbeReport(table: lines.joined(separator: "\n"), json: json)
        if let out = o.out {
            let S = InterventionSupport.self
            try writeResultsHDF5(out, overwrite: o.force) { f in
                try S.provenance(f, kind: "patch", checkpoint: o.checkpoint, fields: ["clean_file": o.clean, "corrupt_file": o.corrupt])
                try S.write(f, "baselines", [result.cleanBaseline, result.corruptBaseline], shape: [2], dims: "run")
                try S.write(f, "baseline_names", strings: ["clean", "corrupt"], dims: "run")
                try S.write(f, "position_tokens", strings: positionLabels, dims: "position")
                for m in result.matrices {
                    let g = try f.createGroup(m.site.rawValue)
                    let dims = m.site == .z ? "layer,head" : "layer,position"
                    try S.write(g, "logit_diff", m.logitDiff, shape: [m.rows, m.cols], dims: dims)
                    try S.write(g, "normalized", m.normalized, shape: [m.rows, m.cols], dims: dims)
                }
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            for m in result.matrices {
                let path = result.matrices.count == 1 ? plot : suffixed(plot, m.site.rawValue)
                var h = Heatmap(values: (0..<m.rows).map { r in (0..<m.cols).map { m.normalized[r * m.cols + $0] } },
                                rowLabels: (0..<m.rows).map { "layer \($0)" },
                                colLabels: m.site == .z ? (0..<m.cols).map { "H\($0)" } : positionLabels)
                h.title = "activation patching, \(m.site.rawValue): (patched − corrupt)/(clean − corrupt), \(result.pairs) pairs"
                h.xLabel = m.site == .z ? "head (all positions)" : "position"
                h.yLabel = "layer"; h.colorBarLabel = "normalised logit diff"; h.annotate = true
                h.range = -1...1; h.colorMap = ColorMap.diverging
                try writeTextAtomically(h.render(), to: path, overwrite: o.force)
                report.written.append(path)
            }
        }
        return report
    }

    /// A token as text for labels ("<bos>", "␣" for a space, "\n"): a character vocabulary's own token, a BPE
    /// token's decoded text (spaces shown as ␣), or "<bos>" for the framing token.
    static func tokenText(_ t: any TextTokenizer, _ id: Int32) -> String {
        if let chars = t as? CharTokenizer {
            let s = chars.tokens[Int(id)]
            return s == " " ? "␣" : s == "\n" ? "\\n" : s
        }
        if id == t.bos { return "<bos>" }
        return t.decode([id]).replacingOccurrences(of: " ", with: "␣").replacingOccurrences(of: "\n", with: "\\n")
    }
}
