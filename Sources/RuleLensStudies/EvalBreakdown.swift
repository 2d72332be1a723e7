import Foundation
import RuleLensTasks
import RuleLensNumerics

/// What an evaluation means for the studies, beyond one accuracy: where on the operand plane it fails, whether
/// carries matter, and how accuracy falls with digit count. `rulelens eval` prints it; `rulelens run` records it.
public struct EvalBreakdown {
    /// Final-answer correctness per example (`Answer.extract`), and its mean.
    public var answerCorrect: [Bool]
    public var answerAccuracy: Double
    /// Operand-plane tasks (examples with a and b, data with a plane).
    public var plane: PlaneAccuracyReport?
    /// With held-out squares: Spearman's ρ of accuracy against distance from the centre, with its interval.
    public var distance: DistanceTrend?
    /// Tasks whose answer is built digit by digit with a carry (decimal and base-9 addition).
    public var carry: CarryAccuracyReport?
    /// The same tasks, given the training examples: accuracy on cases whose every digit step occurs in training
    /// against cases with an unseen step.
    public var steps: StepCoverageReport?
    /// Multi-digit addition (length splits): accuracy per digit count.
    public var digits: [(digits: Int, accuracy: Double, n: Int)]?

    /// `carryBase` overrides the task's base (nil: from the task; none for tasks without digit carries).
    /// `training` (the examples the model was trained on, when known) adds the step coverage.
    public static func compute(examples: [Example], predictions: [String], meta: DataMeta?, carryBase: Int? = nil,
                               training: [Example]? = nil) throws -> EvalBreakdown {
        try compute(examples: examples, correct: PlaneAccuracy.answerCorrect(predictions: predictions, examples: examples),
                    meta: meta, carryBase: carryBase, training: training)
    }

    /// The same from per-example verdicts (e.g. teacher-forced exact match).
    public static func compute(examples: [Example], correct ok: [Bool], meta: DataMeta?, carryBase: Int? = nil,
                               training: [Example]? = nil) throws -> EvalBreakdown {
        var b = EvalBreakdown(answerCorrect: ok, answerAccuracy: Double(ok.filter { $0 }.count) / Double(max(1, ok.count)))
        if let plane = meta?.plane, examples.contains(where: { $0.a != nil && $0.b != nil }) {
            let report = PlaneAccuracy.compute(examples: examples, correct: ok, plane: plane, squares: meta?.squares ?? [])
            b.plane = report
            b.distance = DistanceTrend.compute(report)
            if let base = carryBase ?? meta.flatMap({ CarryAccuracy.base(of: $0.spec.task) }) {
                guard base >= 2 else { throw RuleLensError("carry base \(base) is below 2", fix: "pass a base such as 10") }
                var results: [(a: Int, b: Int, correct: Bool)] = []
                for (e, c) in zip(examples, ok) { if let x = e.a, let y = e.b { results.append((x, y, c)) } }
                b.carry = CarryAccuracy.compute(results: results, squares: meta?.squares ?? [], base: base)
                if let training {
                    let pairs = training.compactMap { e in e.a.flatMap { a in e.b.map { (a: a, b: $0) } } }
                    b.steps = StepCoverage.compute(training: pairs, test: results, base: base)
                }
            }
        }
        if DigitAccuracy.applies(meta, examples) {
            b.digits = DigitAccuracy.compute(examples: examples, correct: ok)
        }
        return b
    }
}
