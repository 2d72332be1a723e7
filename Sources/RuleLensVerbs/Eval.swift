import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensStudies

/// How `eval` scores an example.
public enum EvalMode: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Greedy decoding, exact match of the whole target.
    case greedy
    /// The same verdict from one teacher-forced forward (the argmax at every target position is the target token):
    /// for long traces, and for untrained models that never stop decoding. No predictions text.
    case teacherForced = "teacher-forced"
}

/// `eval`: accuracy of a checkpoint on parts of a data set, with the breakdowns the studies read — the operand plane
/// (inside / centre / rim of held-out squares, by ring), carries, and digit counts.
public enum EvalVerb: Verb {
    public static let commandPath = ["eval"]
    public static let abstract = "Evaluate a checkpoint: exact match, answer accuracy, target loss, and the plane, carry and digit-count breakdowns."
    public static let discussion = """
        Loads every family (gpt2, llama, qwen2, and checkpoints trained with a rule prior, whose prior is selected by \
        each example's rule). Results are keyed by part (--part test --part train). With --out DIR, writes per part \
        DIR/predictions_PART.jsonl and, for operand tasks, DIR/plane_PART.npy/.svg/.json (the accuracy heatmap).
        """

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, or a Hugging Face gpt2/llama/qwen2 folder).")
        public var checkpoint: InputPath
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Part to evaluate, with --task or a data folder (repeatable; results are keyed by part).")
        public var part: [DataPart] = [.test]
        @Option(parsing: .unconditional, help: "Evaluate a seeded sample of at most this many examples per part.")
        public var limit: Int?
        @Option(parsing: .unconditional, help: "Seed of the --limit sample.") public var limitSeed: UInt64 = 0
        @Option(help: "greedy (decode and compare) or teacher-forced (the same exact-match verdict from one forward pass).")
        public var mode: EvalMode = .greedy
        @Option(parsing: .unconditional, help: "Base of the units-digit carry split (default: 10 for decimal addition tasks, 9 for base-9).")
        public var carryBase: Int?
        @Option(parsing: .unconditional, help: "Prompts per batch.") public var batch: Int = 64
        @Option(help: "Folder for predictions_PART.jsonl and the plane heatmaps (created; existing files are kept unless --force).")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of examples (or leave it out for all)") }
            if batch < 1 { throw ValidationError("--batch is \(batch); pass a positive number, e.g. --batch 64") }
            if let carryBase, carryBase < 2 { throw ValidationError("--carry-base is \(carryBase); pass a base of 2 or more, e.g. 10") }
            if Set(part).count != part.count { throw ValidationError("--part names a part twice; name each part once") }
        }
    }

    /// One part's numbers. Operand tasks add the plane breakdown; addition tasks the carry split; multi-digit
    /// addition the accuracy per digit count.
    public struct PartResult: Codable, Sendable {
        public var n: Int
        /// Exact match of the whole target.
        public var accuracy: Double
        /// The final answer right (`Answer.extract`), whatever the steps before it.
        public var answerAccuracy: Double
        /// Mean target cross-entropy (nats); null when no target token was scored.
        public var loss: Double?
        public var overall: Double?
        public var outside: Double?
        public var inside: Double?
        public var centre: Double?
        public var rim: Double?
        /// Accuracy by ring (Chebyshev distance from the square's centre), for a single held-out square.
        public var rings: [Double?]?
        public var squares: [SquareResult]?
        public var carry: CarryResult?
        /// Spearman's ρ of cell accuracy against distance from the square's centre, with its 95% cell-bootstrap interval.
        public var distance: DistanceTrend?
        /// Accuracy on test cases whose every digit step occurs in the data's training part, against the others.
        public var steps: StepCoverageReport?
        public var digits: [String: Double]?
        public var digitCounts: [Int]?
        public var digitAccuracy: [Double]?

        enum CodingKeys: String, CodingKey {
            case n, accuracy, answerAccuracy = "answer_accuracy", loss, overall, outside, inside, centre, rim, rings, squares, carry,
                 distance, steps, digits, digitCounts = "digit_counts", digitAccuracy = "digit_accuracy"
        }

        /// A number that could not be computed is `null`, not left out: `loss` always; the plane's fields when the
        /// data has a plane (and held-out squares).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(n, forKey: .n); try c.encode(accuracy, forKey: .accuracy)
            try c.encode(answerAccuracy, forKey: .answerAccuracy); try c.encode(loss, forKey: .loss)
            if squares != nil || overall != nil { try c.encode(overall, forKey: .overall); try c.encode(outside, forKey: .outside) }
            if squares != nil { try c.encode(inside, forKey: .inside); try c.encode(centre, forKey: .centre); try c.encode(rim, forKey: .rim) }
            try c.encodeIfPresent(rings, forKey: .rings); try c.encodeIfPresent(squares, forKey: .squares)
            try c.encodeIfPresent(carry, forKey: .carry); try c.encodeIfPresent(digits, forKey: .digits)
            try c.encodeIfPresent(distance, forKey: .distance); try c.encodeIfPresent(steps, forKey: .steps)
            try c.encodeIfPresent(digitCounts, forKey: .digitCounts); try c.encodeIfPresent(digitAccuracy, forKey: .digitAccuracy)
        }
    }

    public struct SquareResult: Codable, Sendable {
        public var centerA: Int, centerB: Int, half: Int
        public var inside: Double?, centre: Double?, rim: Double?
        public var rings: [Double?]
        enum CodingKeys: String, CodingKey { case centerA = "center_a", centerB = "center_b", half, inside, centre, rim, rings }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(centerA, forKey: .centerA); try c.encode(centerB, forKey: .centerB); try c.encode(half, forKey: .half)
            try c.encode(inside, forKey: .inside); try c.encode(centre, forKey: .centre); try c.encode(rim, forKey: .rim)
            try c.encode(rings, forKey: .rings)
        }
    }

    public struct CarryResult: Codable, Sendable {
        public var base: Int
        public var insideCarry: Double?, insideNoCarry: Double?, outsideCarry: Double?, outsideNoCarry: Double?
        public var counts: [Int]
        enum CodingKeys: String, CodingKey {
            case base, insideCarry = "inside_carry", insideNoCarry = "inside_no_carry", outsideCarry = "outside_carry",
                 outsideNoCarry = "outside_no_carry", counts
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(base, forKey: .base); try c.encode(insideCarry, forKey: .insideCarry); try c.encode(insideNoCarry, forKey: .insideNoCarry)
            try c.encode(outsideCarry, forKey: .outsideCarry); try c.encode(outsideNoCarry, forKey: .outsideNoCarry)
            try c.encode(counts, forKey: .counts)
        }
    }

    /// Parts by name (`test`, `train`, `all`), and the provenance every result carries.
    public struct Result: Encodable {
        public var parts: [String: PartResult]
        public var provenance: BLASProvenance

        struct Key: CodingKey {
            var stringValue: String; var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for (name, r) in parts { try c.encode(r, forKey: Key(stringValue: name)) }
            try c.encode(provenance, forKey: Key(stringValue: "provenance"))
        }
    }

    /// --quick: a small sample, scored teacher-forced (an untrained model never stops decoding).
    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 40); o.set("mode", EvalMode.teacherForced.rawValue) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let source = try a.source.source()
        if let out = a.out { try OutputCommit.createFolder(out) }
        func outPath(_ name: String) throws -> String? {
            guard let out = a.out else { return nil }
            let path = (out as NSString).appendingPathComponent(name)
            if !a.runtime.force && FileManager.default.fileExists(atPath: path) {
                throw RuleLensError("\(path) already exists", fix: "choose another --out folder, or pass --force to replace it")
            }
            return path
        }
        let model = try ModelFolder.load(a.checkpoint.path, rulePriors: true)
        let tokenizer = try Jobs.tokenizer(checkpoint: a.checkpoint.path, vocabSize: model.vocabSize)
        var parts: [String: PartResult] = [:]
        var figures: [VerbFigure] = [], files: [String] = []
        for part in a.part {
            let name = part.rawValue
            // Refusals first: nothing is evaluated when an output would be clobbered.
            let predictionsPath = try outPath("predictions_\(name).jsonl")
            var loaded = try source.load(part)
            if let limit = a.limit, limit < loaded.examples.count {
                var idx = Array(loaded.examples.indices)
                var rng = SeededRNG(seed: a.limitSeed, stream: "eval-limit")
                rng.shuffle(&idx)
                loaded.examples = idx.prefix(limit).sorted().map { loaded.examples[$0] }
            }
            if let prior = model as? any RuleConditionedModel {   // each example's prior is selected by its rule column
                try RulePriorData.select(prior, examples: loaded.examples, tokenizer: tokenizer, path: loaded.origin, source: loaded.origin)
            }
            ctx.log("  evaluating \(loaded.examples.count) examples (\(name))")
            // The training part of the same data (a data folder or a generated task), for the step coverage — read only
            // where there are digit steps to cover (the tasks with a carry base).
            let hasSteps = a.carryBase != nil || loaded.meta.flatMap { CarryAccuracy.base(of: $0.spec.task) } != nil
            let training = part == .test && source.hasParts && hasSteps ? try source.load(.train).examples : nil
            let accuracy: Double, loss: Double, n: Int
            let predictions: [EvalPrediction]
            let breakdown: EvalBreakdown
            switch a.mode {
            case .teacherForced:
                let items = try Batching.tokenize(loaded.examples, tokenizer: tokenizer, nCtx: model.contextLength, source: loaded.origin)
                let exact = EvalJob.teacherForcedExactMatch(model, items: items, batchSize: a.batch)
                let losses = EvalJob.targetLoss(model, items: items, batchSize: a.batch, pad: tokenizer.pad)
                accuracy = Double(exact.filter { $0 }.count) / Double(max(1, exact.count)); loss = losses.mean; n = items.count
                predictions = zip(loaded.examples, exact).enumerated().map { i, p in
                    EvalPrediction(id: p.0.id, prompt: p.0.prompt, target: p.0.target, prediction: "", correct: p.1, loss: losses.perExample[i])
                }
                breakdown = try EvalBreakdown.compute(examples: loaded.examples, correct: exact, meta: loaded.meta, carryBase: a.carryBase,
                                                      training: training)
            case .greedy:
                let result = try EvalJob.run(model, tokenizer: tokenizer, examples: loaded.examples, source: loaded.origin,
                                             batchSize: a.batch, progress: ctx.progress)
                accuracy = result.accuracy; loss = result.loss; n = result.n; predictions = result.predictions
                breakdown = try EvalBreakdown.compute(examples: loaded.examples, predictions: result.predictions.map(\.prediction),
                                                      meta: loaded.meta, carryBase: a.carryBase, training: training)
            }
            if let predictionsPath {
                try EvalJob.writePredictions(predictions, to: predictionsPath)
                files.append("predictions_\(name).jsonl")
            }
            var r = PartResult(n: n, accuracy: accuracy, answerAccuracy: breakdown.answerAccuracy, loss: loss.isFinite ? loss : nil)
            if let plane = breakdown.plane {
                r.overall = plane.overall; r.outside = plane.outside
                if !plane.squares.isEmpty {
                    r.inside = plane.inside; r.centre = plane.central; r.rim = plane.rim
                    r.squares = plane.squares.map {
                        SquareResult(centerA: $0.square.centerA, centerB: $0.square.centerB, half: $0.square.half,
                                     inside: $0.inside, centre: $0.central, rim: $0.rim, rings: $0.rings)
                    }
                    if plane.squares.count == 1 { r.rings = plane.squares[0].rings }
                }
                r.distance = breakdown.distance
                r.steps = breakdown.steps
                if let c = breakdown.carry {
                    r.carry = CarryResult(base: c.base, insideCarry: c.insideCarry, insideNoCarry: c.insideNoCarry,
                                          outsideCarry: c.outsideCarry, outsideNoCarry: c.outsideNoCarry, counts: c.counts)
                }
                if let out = a.out {
                    let prefix = (out as NSString).appendingPathComponent("plane_\(name)")
                    for ext in ["npy", "svg", "json"] { _ = try outPath("plane_\(name).\(ext)") }
                    let title = "\(loaded.meta?.task ?? "") (\(loaded.meta?.split ?? ""), \(name)): answer accuracy"
                    _ = try PlaneAccuracy.write(plane, prefix: prefix, title: title)
                    if let carry = breakdown.carry {   // the heatmap with the carry boundaries drawn (dashed)
                        try AtomicFile.write(Data(CarryAccuracy.heatmap(plane, base: carry.base, title: title + " · carry boundaries").utf8),
                                             to: prefix + ".svg")
                    }
                    figures.append(VerbFigure(title: "Operand plane, \(name) part" + (breakdown.carry != nil ? " (dashed: carry boundaries)" : ""),
                                              file: "plane_\(name).svg"))
                    files += ["plane_\(name).npy", "plane_\(name).json"]
                }
            }
            if let digits = breakdown.digits {
                r.digits = Dictionary(digits.map { (String($0.digits), $0.accuracy) }, uniquingKeysWith: { a, _ in a })
                r.digitCounts = digits.map(\.digits)
                r.digitAccuracy = digits.map(\.accuracy)
                if let out = a.out {
                    _ = try outPath("digits_\(name).svg")
                    try AtomicFile.write(Data(DigitAccuracy.chart([(name, digits)], title: "Accuracy by digit count (\(name))").utf8),
                                         to: (out as NSString).appendingPathComponent("digits_\(name).svg"))
                    figures.append(VerbFigure(title: "Accuracy by digit count, \(name) part", file: "digits_\(name).svg"))
                }
            }
            parts[name] = r
            ctx.log(String(format: "  %@: accuracy %.4f, answer accuracy %.4f", name, accuracy, breakdown.answerAccuracy)
                    + (breakdown.plane.map { " · " + PlaneAccuracy.summaryLines($0)[0] } ?? ""))
        }
        return VerbOutcome(Result(parts: parts, provenance: .current), figures: figures, files: files)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        var lines: [String] = []
        for part in a.part {
            guard let r = result.parts[part.rawValue] else { continue }
            lines.append(String(format: "%@: accuracy %.4f (%d examples, exact match), answer accuracy %.4f, loss %@", part.rawValue,
                                r.accuracy, r.n, r.answerAccuracy, r.loss.map { String(format: "%.4f", $0) } ?? "n/a"))
            func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
            if r.squares != nil { lines.append("  plane: inside \(f(r.inside)), centre \(f(r.centre)), rim \(f(r.rim)), outside \(f(r.outside))") }
            else if r.overall != nil { lines.append("  plane: overall \(f(r.overall))") }
            if let d = r.distance {
                lines.append("  accuracy against distance from the centre: Spearman ρ \(f(d.spearman)) [\(f(d.lo)), \(f(d.hi))] over \(d.cells) cells")
            }
            if let c = r.carry {
                lines.append("  carry (base \(c.base)): inside carry \(f(c.insideCarry)), inside no carry \(f(c.insideNoCarry)), outside carry \(f(c.outsideCarry)), outside no carry \(f(c.outsideNoCarry))")
            }
            if let steps = r.steps { lines.append("  " + StepCoverage.summaryLine(steps)) }
            if let counts = r.digitCounts, let acc = r.digitAccuracy {
                lines.append("  by digit count: " + zip(counts, acc).map { "\($0.0): \(String(format: "%.3f", $0.1))" }.joined(separator: ", "))
            }
        }
        lines.append("(\(result.provenance.summary); results are bitwise reproducible only under the same kernel and threads)")
        if let out = a.out { lines.append("wrote into \(out)") }
        return lines
    }
}
