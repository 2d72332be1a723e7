import RuleLensTasks

/// Study 1's mechanism for the scratchpad: "a held-out case succeeds only if each of its steps was seen in
/// training". A step of an addition is one digit position's computation as the scratchpad writes it — (position
/// from the right, digit of a, digit of b, carry in) → (digit, carry out) — so a test case's steps are *all seen*
/// when every one of its tuples occurs in some training example. Accuracy is reported on all-seen and some-unseen
/// test cases.
public struct StepCoverageReport: Codable, Sendable, Equatable {
    public var base: Int
    /// Accuracy over test cases whose every step occurs in training, and over those with an unseen step.
    public var allSeen: Double?
    public var someUnseen: Double?
    /// all_seen − some_unseen (null where either is).
    public var difference: Double?
    public var nAllSeen: Int
    public var nSomeUnseen: Int
    /// Distinct steps in the training examples.
    public var trainingSteps: Int

    enum CodingKeys: String, CodingKey {
        case base, difference
        case allSeen = "all_seen", someUnseen = "some_unseen", nAllSeen = "n_all_seen", nSomeUnseen = "n_some_unseen"
        case trainingSteps = "training_steps"
    }

    /// Every key always, `null` where a number could not be computed.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(base, forKey: .base); try c.encode(allSeen, forKey: .allSeen); try c.encode(someUnseen, forKey: .someUnseen)
        try c.encode(difference, forKey: .difference); try c.encode(nAllSeen, forKey: .nAllSeen)
        try c.encode(nSomeUnseen, forKey: .nSomeUnseen); try c.encode(trainingSteps, forKey: .trainingSteps)
    }
}

public enum StepCoverage {
    public struct Step: Hashable, Sendable {
        public var position: Int, digitA: Int, digitB: Int, carryIn: Int
    }

    /// The steps of a + b in `base` (non-negative operands), one per digit position of the longer operand.
    public static func steps(a: Int, b: Int, base: Int) -> [Step] {
        var x = a, y = b, carry = 0, position = 0
        var out: [Step] = []
        repeat {
            let da = x % base, db = y % base
            out.append(Step(position: position, digitA: da, digitB: db, carryIn: carry))
            carry = (da + db + carry) / base
            x /= base; y /= base; position += 1
        } while x > 0 || y > 0
        return out
    }

    /// Coverage of `test` results by the steps of the `training` operand pairs.
    public static func compute(training: [(a: Int, b: Int)], test: [(a: Int, b: Int, correct: Bool)], base: Int) -> StepCoverageReport {
        var seen = Set<Step>()
        for t in training where t.a >= 0 && t.b >= 0 { seen.formUnion(steps(a: t.a, b: t.b, base: base)) }
        var n = [0, 0], right = [0, 0]
        for r in test where r.a >= 0 && r.b >= 0 {
            let group = steps(a: r.a, b: r.b, base: base).allSatisfy(seen.contains) ? 0 : 1
            n[group] += 1
            if r.correct { right[group] += 1 }
        }
        func acc(_ g: Int) -> Double? { n[g] > 0 ? Double(right[g]) / Double(n[g]) : nil }
        let allSeen = acc(0), someUnseen = acc(1)
        return StepCoverageReport(base: base, allSeen: allSeen, someUnseen: someUnseen,
                                  difference: allSeen.flatMap { s in someUnseen.map { s - $0 } },
                                  nAllSeen: n[0], nSomeUnseen: n[1], trainingSteps: seen.count)
    }

    public static func summaryLine(_ r: StepCoverageReport) -> String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
        return "steps seen in training: all \(f(r.allSeen)) (\(r.nAllSeen) cases) · some unseen \(f(r.someUnseen)) (\(r.nSomeUnseen) cases)"
    }
}
