import Foundation
import RuleLensAnalysis
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// `rulelens retrieve` on a language VAE (`rulelens vae train`): the decoder's retrieval of the source keys when its
/// latent z — injected the way the VAE was trained (memory slot, query, embedding: `VAEConfig.inject`) — is
///
/// - `none`: z = 0 (the mean of the VAE's prior N(0, I): no information about the example);
/// - `encoder`: μ of the encoder on the example itself (what the VAE reconstructs from);
/// - `prior`: the rule's mean z — μ averaged over the examples of the example's rule (the rule prior);
/// - `wrong-prior`: the next rule's mean z (rule r gets rule (r + 1) mod R's);
/// - `random`: a random z with exactly the norm of the rule's mean z.
///
/// Same metrics and intervals as `Retrieval`; the decoder reads `[bos] + prompt + target` as a GPT does.
public enum VAEPriorRetrieval {
    public static func run(vae: VAE, examples: [Example], values: [String], source: String, options: RetrievalOptions,
                           progress: ProgressLine? = nil) throws -> RetrievalReport {
        let c = vae.config, k = c.latentSize
        let labels = Labels(strings: values)
        guard labels.classCount >= 2 else {
            throw RuleLensError("the rule label has \(labels.classCount) value(s) in \(source); the rule-mean and wrong-rule conditions need at least two",
                                fix: "use data with several rules (e.g. --task syllogism)")
        }
        let tokenizer = CharTokenizer.standard
        let items = try Retrieval.items(examples, tokenizer: tokenizer, nCtx: c.nPositions, source: source)
        if let long = items.firstIndex(where: { $0.tokens.tokens.count > c.nPositions }) {
            throw RuleLensError("example \(long + 1) of \(source) needs \(items[long].tokens.tokens.count) positions for the encoder, more than the VAE's \(c.nPositions)",
                                fix: "use shorter examples (the VAE was trained with --ctx \(c.nPositions))")
        }
        let retained = vae.retainsActivationsForBackward
        vae.retainsActivationsForBackward = false
        defer { vae.retainsActivationsForBackward = retained }
        // μ of every example from the encoder (reading its whole row).
        var mu = [[Float]](repeating: [], count: items.count)
        for start in stride(from: 0, to: items.count, by: max(1, options.batchSize)) {
            let indices = Array(start..<min(items.count, start + max(1, options.batchSize)))
            let Te = indices.map { items[$0].tokens.tokens.count }.max()!
            var enc = [Int32](repeating: CharTokenizer.pad, count: indices.count * Te)
            for (b, i) in indices.enumerated() { for (t, token) in items[i].tokens.tokens.enumerated() { enc[b * Te + t] = token } }
            vae.encode(encTokens: enc, encLengths: indices.map { Int32(items[$0].tokens.tokens.count) }, batch: indices.count, seqLen: Te)
            let m = vae.lastMu
            for (b, i) in indices.enumerated() { mu[i] = Array(m[(b * k)..<((b + 1) * k)]) }
        }
        let R = labels.classCount
        var means = [[Float]](repeating: [Float](repeating: 0, count: k), count: R)
        for r in 0..<R {
            let members = labels.ids.indices.filter { labels.ids[$0] == r }
            var sum = [Double](repeating: 0, count: k)
            for i in members { for j in 0..<k { sum[j] += Double(mu[i][j]) } }
            means[r] = sum.map { Float($0 / Double(max(1, members.count))) }
        }
        let random = Retrieval.randomLike(means, seed: options.seed)
        let zero = [Float](repeating: 0, count: k)
        let modes = c.inject.map(\.rawValue).joined(separator: "+")
        let runs: [(kind: String, name: String, z: (Int) -> [Float])] = [
            ("none", "z = 0 (\(modes))", { _ in zero }),
            ("encoder", "z from the encoder (\(modes))", { mu[$0] }),
            ("prior", "rule's mean z (\(modes))", { means[labels.ids[$0]] }),
            ("wrong-prior", "wrong rule's mean z (\(modes))", { means[(labels.ids[$0] + 1) % R] }),
            ("random", "random z, rule mean's norm (\(modes))", { random[labels.ids[$0]] }),
        ]
        var results: [[RetrievalExample]] = []
        let t0 = ProgressLine.now()
        for (ci, run) in runs.enumerated() {
            results.append(Retrieval.measure(layers: c.nLayer, heads: c.nHead, vocab: c.vocabSize, items: items, batchSize: options.batchSize) {
                tokens, B, T, hooks, indices in
                vae.setLatent(indices.flatMap { run.z($0) }, batch: B)
                return vae.decode(decInputs: tokens, seqLen: T, hooks: hooks)
            })
            Retrieval.reportCondition(progress, done: ci + 1, of: runs.count, label: run.name, examples: items.count, since: t0)
        }
        let conditions = runs.map { RetrievalCondition(kind: $0.kind, site: .q, layer: 0, alpha: 1, name: $0.name) }
        let norms = ["z": means.map { m in m.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }]
        return RetrievalJob.assemble(conditions: conditions, results: results, layers: c.nLayer, heads: c.nHead, labels: labels,
                                     items: items.count, options: options, priorNorms: norms)
    }
}
