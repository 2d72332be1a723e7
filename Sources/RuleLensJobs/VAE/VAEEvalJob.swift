import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// What `rulelens vae eval` reports (means over the examples; nats).
public struct VAEEvalReport: Codable, Sendable {
    public var n: Int
    /// Greedy reconstruction from z = μ equals the reference (prompt + target, or the target with decode `target`).
    public var exactMatch: Double
    /// Teacher-forced next-token arg-max accuracy over the counted positions (z = μ).
    public var tokenAccuracy: Double
    /// Corpus BLEU-4 of the greedy reconstructions (whitespace words).
    public var bleu: Double
    public var reconstruction: Double
    public var kl: Double
    public var elbo: Double
    public var activeUnits: Int
    public var latentSize: Int
    public var mutualInformation: Double
    public var classifierAccuracy: Double?
    public var classifierLoss: Double?

    enum CodingKeys: String, CodingKey {
        case n, exactMatch = "exact_match", tokenAccuracy = "token_accuracy", bleu, reconstruction, kl, elbo
        case activeUnits = "active_units", latentSize = "latent_size", mutualInformation = "mutual_information"
        case classifierAccuracy = "classifier_accuracy", classifierLoss = "classifier_loss"
    }
}

/// One reconstructed example (a line of `vae eval --out`).
public struct VAEEvalLine: Codable, Sendable {
    public var id: Int?
    public var reference: String
    public var reconstruction: String
    public var exact: Bool
    public var rec: Double, kl: Double, elbo: Double
    public var label: String?
    public var predictedLabel: String?
    enum CodingKeys: String, CodingKey {
        case id, reference, reconstruction, exact, rec, kl, elbo, label, predictedLabel = "predicted_label"
    }
}

public enum VAEEvalJob {
    /// Evaluates `checkpoint` on `data`: z = μ for reconstruction and the ELBO terms, one seeded z sample per example
    /// (ε from `seed`, stream per batch start — the same as `vae encode --sample --batch B --seed S`) for the mutual
    /// information, computed over the whole set at once.
    public static func run(checkpoint: String, data: String, batch: Int = 64, seed: UInt64 = 0, progress: Bool = true)
        throws -> (report: VAEEvalReport, lines: [VAEEvalLine]) {
        guard batch > 0 else { throw RuleLensError("--batch must be positive (got \(batch))", fix: "pass e.g. --batch 64") }
        let vae = try VAECheckpoint.load(checkpoint)
        vae.retainsActivationsForBackward = false
        let c = vae.config, k = c.latentSize
        var labelColumn = c.supervise
        if let column = labelColumn, (try? VAEItems.column(column, path: data)) == nil { labelColumn = nil }   // no labels: skip class metrics
        let items = try VAEItems(path: data, nCtx: c.nPositions, labelColumn: labelColumn, classNames: labelColumn == nil ? nil : c.classNames)
        let tokenizer = CharTokenizer.standard
        var mus: [Float] = [], logvars: [Float] = [], zs: [Float] = []
        var lines: [VAEEvalLine] = []
        var hits = 0, counted = 0, exact = 0, classHits = 0
        var rec = 0.0, kl = 0.0, clsLoss = 0.0
        var candidates: [String] = [], references: [String] = []
        let line = ProgressLine(enabled: progress)
        var start = 0
        while start < items.count {
            let end = min(items.count, start + batch)
            let indices = Array(start..<end)
            let b = items.batch(indices, decode: c.decode)
            // z = μ: ELBO terms, token accuracy, classifier.
            let logits = vae.forward(b, epsilon: nil)
            let terms = vae.perExampleTerms(b, logits: logits)
            mus += vae.lastMu; logvars += vae.lastLogvar
            let z = vae.lastMu
            // One sample per example for the MI estimate.
            let eps = VAE.epsilon(seed: seed, step: start, count: b.batch * k)
            for i in 0..<(b.batch * k) { zs.append(vae.lastMu[i] + Foundation.exp(0.5 * vae.lastLogvar[i]) * eps[i]) }
            // Greedy reconstruction from z = μ.
            let prompts = indices.map { c.decode == .all ? [CharTokenizer.bos] : Array(items.rows[$0][0..<items.promptLengths[$0]]) }
            let maxNew = indices.map { items.rows[$0].count - prompts[$0 - start].count }.max()! + 4
            let generated = vae.greedy(z: z, prompts: prompts, maxNewTokens: maxNew)
            for (j, i) in indices.enumerated() {
                let row = items.rows[i]
                let reference = Array(row[prompts[j].count..<(row.count - 1)])
                let isExact = generated[j] == reference
                if isExact { exact += 1 }
                let refText = tokenizer.decode(reference), candText = tokenizer.decode(generated[j])
                references.append(refText); candidates.append(candText)
                let t = terms[j]
                hits += t.tokenHits; counted += t.tokensCounted
                rec += t.reconstruction; kl += t.kl
                var label: String? = nil, predicted: String? = nil
                if let labels = items.labels, let p = t.predictedClass {
                    label = c.classNames[Int(labels[i])]; predicted = c.classNames[p]
                    if p == Int(labels[i]) { classHits += 1 }
                    clsLoss += t.classifierLoss ?? 0
                }
                lines.append(VAEEvalLine(id: items.examples[i].id, reference: refText, reconstruction: candText, exact: isExact,
                                         rec: t.reconstruction, kl: t.kl, elbo: t.elbo, label: label, predictedLabel: predicted))
            }
            start = end
            line.update("eval \(start)/\(items.count) examples", final: start == items.count)
        }
        let n = items.count
        let au = VAEMetrics.activeUnits(mu: mus, n: n, k: k)
        let mi = VAEMetrics.mutualInformation(mu: mus, logvar: logvars, z: zs, n: n, k: k)
        let report = VAEEvalReport(n: n, exactMatch: Double(exact) / Double(n), tokenAccuracy: Double(hits) / Double(max(1, counted)),
                                   bleu: VAEMetrics.bleu(candidates: candidates, references: references),
                                   reconstruction: rec / Double(n), kl: kl / Double(n), elbo: -(rec + kl) / Double(n),
                                   activeUnits: au.count, latentSize: k, mutualInformation: mi,
                                   classifierAccuracy: items.labels == nil ? nil : Double(classHits) / Double(n),
                                   classifierLoss: items.labels == nil ? nil : clsLoss / Double(n))
        return (report, lines)
    }
}
