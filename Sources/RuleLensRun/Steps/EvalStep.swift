import Foundation
import RuleLensJobs

/// `eval`: greedy-decoding accuracy of a checkpoint on parts of a data set, with the breakdowns the studies read:
/// the operand plane (inside / centre / rim of held-out squares, by ring), carries, and digit counts.
public enum EvalStep: RunStep {
    public static let kind = "eval"
    public static let summary = "Evaluate a checkpoint on data parts: accuracy, plane (inside/centre/rim, rings), carry and digit-count breakdowns, heatmaps."
    public static let options: [StepOption] = [
        .init("checkpoint", .path, "checkpoint folder, e.g. ${train}", required: true),
        .init("data", .path, "a `data` step's folder or a JSONL file", required: true),
        .init("part", .list, "parts to evaluate: train, test, all (default test); results are keyed by part"),
        .init("limit", .int, "evaluate a seeded sample of at most this many examples per part"),
        .init("carry-base", .int, "base of the units-digit carry split (default: 10 for decimal addition tasks, 9 for base-9)"),
        .init("batch", .int, "prompts per decoding batch"),
        .init("mode", .choice(["greedy", "teacher-forced"]), "greedy decoding (default), or teacher-forced exact match: the same verdict from one forward pass (for long traces); no predictions text"),
        .init("seed", .int, "seed of the --limit sample"),
    ]

    /// --quick: a small sample, scored teacher-forced (one forward per example; an untrained model never stops decoding).
    public static func quick(_ o: inout StepOptions) { o.cap("limit", 40); o.set("mode", "teacher-forced") }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        let parts = ((try? o.list("part")) ?? nil) ?? ["test"]
        return parts.map { p in
            "rulelens eval --checkpoint \((try? o.string("checkpoint")).flatMap { $0 } ?? "?") --data \((try? o.string("data")).flatMap { $0 } ?? "?") "
                + "--part \(p) --out \(dir)/predictions_\(p).jsonl"
        }.joined(separator: "\n")
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let checkpoint = try o.requiredString("checkpoint"), data = try o.requiredString("data")
        let parts = try o.list("part") ?? ["test"]
        let (model, vocab) = try Checkpoint.load(checkpoint)
        let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: checkpoint)
        var results: [String: Any] = [:]
        var figures: [StepFigure] = [], files: [String] = []
        for partName in parts {
            guard let part = DataPart(rawValue: partName) else {
                throw RuleLensError(o.problem("part", "\(partName) is not train, test or all"), fix: "write part: test (or train, all, or a list)")
            }
            var loaded = try DataSource(file: data).load(part)
            if let limit = try o.int("limit"), limit < loaded.examples.count {
                var idx = Array(loaded.examples.indices)
                var rng = SeededRNG(seed: UInt64(max(0, try o.int("seed", default: 0))), stream: "eval-limit")
                rng.shuffle(&idx)
                loaded.examples = idx.prefix(limit).sorted().map { loaded.examples[$0] }
            }
            ctx.log("  evaluating \(loaded.examples.count) examples (\(partName))")
            let batchSize = try o.int("batch", default: 64)
            let accuracy: Double, loss: Double, n: Int
            let breakdown: EvalBreakdown
            if try o.string("mode", default: "greedy") == "teacher-forced" {
                let items = try Batching.tokenize(loaded.examples, tokenizer: tokenizer, nCtx: model.config.nCtx, source: loaded.origin)
                let exact = EvalJob.teacherForcedExactMatch(model, items: items, batchSize: batchSize)
                let losses = EvalJob.targetLoss(model, items: items, batchSize: batchSize)
                accuracy = Double(exact.filter { $0 }.count) / Double(max(1, exact.count)); loss = losses.mean; n = items.count
                let lines = zip(loaded.examples, exact).enumerated().map { i, p in
                    EvalPrediction(id: p.0.id, prompt: p.0.prompt, target: p.0.target, prediction: "", correct: p.1, loss: losses.perExample[i])
                }
                try EvalJob.writePredictions(lines, to: ctx.path("predictions_\(partName).jsonl"))
                breakdown = try EvalBreakdown.compute(examples: loaded.examples, correct: exact, meta: loaded.meta, carryBase: try o.int("carry-base"))
            } else {
                let result = try EvalJob.run(model, tokenizer: tokenizer, examples: loaded.examples, source: loaded.origin, batchSize: batchSize)
                try EvalJob.writePredictions(result.predictions, to: ctx.path("predictions_\(partName).jsonl"))
                accuracy = result.accuracy; loss = result.loss; n = result.n
                breakdown = try EvalBreakdown.compute(examples: loaded.examples, predictions: result.predictions.map(\.prediction),
                                                      meta: loaded.meta, carryBase: try o.int("carry-base"))
            }
            files.append("predictions_\(partName).jsonl")
            var r: [String: Any] = ["accuracy": accuracy, "answer_accuracy": breakdown.answerAccuracy,
                                    "loss": loss.isFinite ? loss : NSNull(), "n": n]
            if let plane = breakdown.plane {
                r["overall"] = nullable(plane.overall)
                r["outside"] = nullable(plane.outside)
                if !plane.squares.isEmpty {
                    r["inside"] = nullable(plane.inside); r["centre"] = nullable(plane.central); r["rim"] = nullable(plane.rim)
                    r["squares"] = plane.squares.map { s -> [String: Any] in
                        ["center_a": s.square.centerA, "center_b": s.square.centerB, "half": s.square.half, "inside": nullable(s.inside),
                         "centre": nullable(s.central), "rim": nullable(s.rim), "rings": s.rings.map { $0 ?? Double.nan }]
                    }
                    if plane.squares.count == 1 { r["rings"] = plane.squares[0].rings.map { $0 ?? Double.nan } }
                }
                let prefix = ctx.path("plane_\(partName)")
                let title = "\(loaded.meta?.task ?? "") (\(loaded.meta?.split ?? ""), \(partName)): answer accuracy"
                try PlaneAccuracy.write(plane, prefix: prefix, title: title)
                if let carry = breakdown.carry {
                    r["carry"] = ["base": carry.base, "inside_carry": nullable(carry.insideCarry), "inside_no_carry": nullable(carry.insideNoCarry),
                                  "outside_carry": nullable(carry.outsideCarry), "outside_no_carry": nullable(carry.outsideNoCarry),
                                  "counts": carry.counts] as [String: Any]
                    try AtomicFile.write(Data(CarryAccuracy.heatmap(plane, base: carry.base, title: title + " · carry boundaries").utf8),
                                         to: prefix + ".svg")
                }
                figures.append(StepFigure(title: "Operand plane, \(partName) part" + (breakdown.carry != nil ? " (dashed: carry boundaries)" : ""),
                                          file: "plane_\(partName).svg"))
                files += ["plane_\(partName).npy", "plane_\(partName).json"]
            }
            if let digits = breakdown.digits {
                r["digits"] = Dictionary(digits.map { (String($0.digits), $0.accuracy) }, uniquingKeysWith: { a, _ in a })
                r["digit_counts"] = digits.map(\.digits)
                r["digit_accuracy"] = digits.map(\.accuracy)
                try AtomicFile.write(Data(DigitAccuracy.chart([(partName, digits)], title: "Accuracy by digit count (\(partName))").utf8),
                                     to: ctx.path("digits_\(partName).svg"))
                figures.append(StepFigure(title: "Accuracy by digit count, \(partName) part", file: "digits_\(partName).svg"))
            }
            results[partName] = r
            ctx.log(String(format: "  %@: accuracy %.4f, answer accuracy %.4f", partName, accuracy, breakdown.answerAccuracy)
                    + " (\(BLASProvenance.current.summary))"
                    + (breakdown.plane.map { " · " + PlaneAccuracy.summaryLines($0)[0] } ?? ""))
        }
        return StepOutcome(results: RunValue(any: results), figures: figures, files: files)
    }
}

/// A number or JSON null.
func nullable(_ v: Double?) -> Any { v.map { $0 as Any } ?? NSNull() }
