import Foundation
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensStudies
import RuleLensTasks

/// `rulelens retrieve` on a checkpoint trained with a rule prior (`rulelens train --rule-prior COLUMN --inject SITE`):
/// the same metrics and intervals as the training-free test, under these conditions —
///
/// - `none`: the GPT-2 weights with no injection at all (for query/key/value/embedding this equals a zero prior bit
///   for bit; for memory it also removes the extra slot);
/// - `prior (SITE)`: the example's own rule's trained row, where it was trained;
/// - `wrong-prior (SITE)`: the next rule's row (rule r gets row (r + 1) mod R);
/// - `random (SITE)`: a Gaussian vector with, per layer, exactly the norm of the example's own row in that layer;
/// - `prior moved to S`: the example's own row injected at another site S of the same shape: query, key, value and memory
///   all hold one d_model vector per layer, so the row moves between them; an embedding prior (one vector) has no
///   per-layer counterpart and is not moved.
public enum RulePriorRetrieval {
    /// The sites a trained row of `inject` can be moved to.
    public static func movable(from inject: Injection) -> [Injection] {
        inject == .embedding ? [] : [Injection.query, .key, .value, .memory].filter { $0 != inject }
    }

    /// The random control of each rule: per layer (d_model-wide chunk of the row), a seeded Gaussian direction scaled to
    /// exactly the row's norm in that chunk.
    public static func randomControl(_ model: RulePriorGPT, seed: UInt64) -> [[Float]] {
        let width = model.spec.width(model.config), d = model.config.dModel, chunks = width / d
        return (0..<model.spec.rules.count).map { r in
            let v = model.rowValues(r)
            return (0..<chunks).flatMap { l in
                Retrieval.randomLike([Array(v[(l * d)..<((l + 1) * d)])], seed: seed &+ UInt64(r * chunks + l))[0]
            }
        }
    }

    /// Runs every condition on `examples` (with `sources`); `values` are the examples' rule-prior column values.
    public static func run(model: RulePriorGPT, tokenizer: CharTokenizer, examples: [Example], values: [String], source: String,
                           options: RetrievalOptions, progress: ProgressLine? = nil) throws -> RetrievalReport {
        let spec = model.spec, c = model.config, d = c.dModel, L = c.nLayer
        let rows = try RulePriorData.rows(spec, values: values, source: source)
        guard spec.rules.count >= 2 else {
            throw RuleLensError("the rule-prior model knows \(spec.rules.count) rule; the wrong-prior control needs at least two",
                                fix: "train on data with several values of \(spec.column)")
        }
        let items = try Retrieval.items(examples, tokenizer: tokenizer, nCtx: c.nCtx, source: source)
        let R = spec.rules.count
        let own = (0..<R).map { model.rowValues($0) }
        let random = randomControl(model, seed: options.seed)
        let plain = try model.twin(injection: nil)
        var conditions = [RetrievalCondition(kind: "none", site: .q, layer: 0, alpha: 0, name: "none")]
        var runs: [(GPT, (Int) -> [Float])] = [(plain, { _ in [] })]
        func add(_ kind: String, _ name: String, _ gpt: GPT, movedTo: String? = nil, _ vector: @escaping (Int) -> [Float]) {
            conditions.append(RetrievalCondition(kind: kind, site: .q, layer: 0, alpha: 1, name: name, movedTo: movedTo))
            runs.append((gpt, vector))
        }
        let site = spec.inject.rawValue
        add("prior", "prior (\(site))", model.gpt) { own[rows[$0]] }
        add("wrong-prior", "wrong-prior (\(site))", model.gpt) { own[(rows[$0] + 1) % R] }
        add("random", "random (\(site))", model.gpt) { random[rows[$0]] }
        for other in movable(from: spec.inject) {
            add("moved", "prior moved to \(other.rawValue)", try model.twin(injection: other), movedTo: other.rawValue) { own[rows[$0]] }
        }
        var results: [[RetrievalExample]] = []
        let t0 = ProgressLine.now()
        for (ci, (gpt, vector)) in runs.enumerated() {
            let perLayer = gpt.wiring.injections.first.map { $0 != .embedding } ?? false
            results.append(Retrieval.measure(model: gpt, items: items, batchSize: options.batchSize,
                                             conditioning: { indices in
                let rows = indices.flatMap { vector($0) }, width = rows.count / max(1, indices.count)
                var out = [Float](repeating: 0, count: rows.count)     // [L, B, d] (or [B, d]) from rows [L·d] (or [d])
                rows.withUnsafeBufferPointer { r in
                    out.withUnsafeMutableBufferPointer { o in
                        Conditioning.layout(rows: { r.baseAddress! + $0 * width }, batch: indices.count, layers: L, dModel: d,
                                            perLayer: perLayer, into: o.baseAddress!)
                    }
                }
                return out
            }))
            Retrieval.reportCondition(progress, done: ci + 1, of: runs.count, label: conditions[ci].label, examples: items.count, since: t0)
        }
        var norms: [String: [Double]] = [:]
        norms[site] = own.map { v in v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
        return RetrievalJob.assemble(conditions: conditions, results: results, layers: L, heads: c.nHead,
                                     labels: Labels(ids: rows, names: spec.rules), items: items.count, options: options, priorNorms: norms)
    }
}
