import Foundation

/// The outcome of one check, and of a whole run.
///
/// - PASS: the check held.
/// - FAIL: it was evaluated and did not hold — the claim failed this test.
/// - INCONCLUSIVE: a precondition it needs failed on a variant it reads (the model did not fit its training cases, the
///   latent collapsed, …), or a statistic it reads is undefined; its numbers are shown, but they test nothing.
/// - ERROR: it could not be evaluated (a path the results do not have): the spec is broken.
public enum Verdict: String, Sendable, CaseIterable {
    case pass = "PASS", fail = "FAIL", inconclusive = "INCONCLUSIVE", error = "ERROR"

    /// A run's verdict: ERROR if a check (or precondition) could not be evaluated, else FAIL if an expectation failed,
    /// else INCONCLUSIVE if one is, else PASS.
    public static func of(expectations: [ExpectationResult], preconditions: [ExpectationResult]) -> Verdict {
        if (expectations + preconditions).contains(where: { $0.verdict == .error }) { return .error }
        if expectations.contains(where: { $0.verdict == .fail }) { return .fail }
        if expectations.contains(where: { $0.verdict == .inconclusive }) { return .inconclusive }
        return .pass
    }

    /// `rulelens run`'s exit status: 0 PASS, 1 FAIL, 2 ERROR (also every error before the checks: a broken spec, a bad
    /// option, a step that failed), 3 INCONCLUSIVE. A `--quick` smoke run exits 0 unless a check is an ERROR.
    public func exitCode(quick: Bool) -> Int32 {
        if self == .error { return Verdict.brokenExitCode }
        if quick { return 0 }
        switch self {
        case .pass: return 0
        case .fail: return 1
        case .inconclusive: return 3
        case .error: return Verdict.brokenExitCode
        }
    }

    /// The exit status of a spec that could not run (or a check that could not be evaluated).
    public static let brokenExitCode: Int32 = 2
}

/// This run's number for the study's headline measure (`study.here`), with its interval over seeds.
public struct StudyComparison {
    public var expression: String
    public var value: Double?
    /// The bootstrap interval and per-seed values when `here` is a statistic over seeds (`mean(…)`).
    public var statistic: StatisticRecord?
    public var error: String?
}

/// Evaluates a spec's preconditions and expectations against the variants' results, and marks the expectations whose
/// preconditions failed INCONCLUSIVE.
public enum VerdictEvaluator {
    /// Each check once per combination of its free axes (a bare path: per variant; `x[split=lso]` with seeds: per
    /// seed), or once over the sweep when its paths name every axis or sit inside aggregates.
    public static func evaluate(_ checks: [ExpectSpec], variants: [VariantResults], axes: [String]) -> [ExpectationResult] {
        var out: [ExpectationResult] = []
        for check in checks {
            let space = ExpressionEvaluator(variants: variants, axes: axes).space
            let free = space.freeAxes(check.expression)
            let rows: [[String: String]?] = free.isEmpty ? [nil] : space.combinations(of: free, agreeing: [:])
            for row in rows {
                var ev = ExpressionEvaluator(variants: variants, axes: axes, context: row ?? [:])
                let label = row.map { space.label($0) }
                var result = ExpectationResult(text: check.text, why: check.why, variant: label, passed: false, error: nil, readings: [])
                result.id = check.id
                result.needs = check.needs
                do {
                    let v = try ev.evaluate(check.expression)
                    if case .bool(let b) = v { result.passed = b } else { result.error = "the expression gives \(v.display), not true/false" }
                } catch let f as ExpressionEvaluator.Failure {
                    result.error = "\(f.problem) (\(f.fix))"
                } catch let u as ExpressionEvaluator.Undefined {
                    result.inconclusive = u.reason
                } catch {
                    result.error = "\(error)"
                }
                result.readings = ev.readings
                result.statistics = ev.statistics
                result.variantsRead = ev.variantsRead
                result.perVariant = row != nil
                out.append(result)
            }
        }
        return out
    }

    /// Expectations evaluated, then made INCONCLUSIVE where a precondition they need did not pass: a precondition read
    /// once over the sweep gates every expectation that needs it; one read per variant (or seed) gates the expectation
    /// rows that read that variant.
    public static func evaluate(expects: [ExpectSpec], preconditions: [ExpectSpec], variants: [VariantResults], axes: [String])
        -> (preconditions: [ExpectationResult], expectations: [ExpectationResult]) {
        let pre = evaluate(preconditions, variants: variants, axes: axes)
        var results = evaluate(expects, variants: variants, axes: axes)
        for i in results.indices where results[i].verdict != .error {
            let needed = results[i].needs ?? preconditions.compactMap(\.id)
            let blocking = pre.filter { p in
                p.verdict != .pass && needed.contains(p.id ?? "")
                    && (!p.perVariant || !p.variantsRead.isDisjoint(with: results[i].variantsRead))
            }
            guard !blocking.isEmpty else { continue }
            let reasons = blocking.prefix(3).map { p -> String in
                let nums = p.readings.prefix(4).map { "\($0.0) = \($0.1.display)" }.joined(separator: ", ")
                return "precondition \(p.id ?? "") `\(p.text)` \(p.verdict == .fail ? "failed" : p.verdict.rawValue.lowercased())"
                    + (p.variant.map { " at \($0)" } ?? "") + (nums.isEmpty ? "" : " (\(nums))")
                    + (p.why.map { " — \($0)" } ?? "")
            }
            results[i].inconclusive = reasons.joined(separator: "; ") + (blocking.count > 3 ? "; and \(blocking.count - 3) more" : "")
        }
        return (pre, results)
    }

    /// `study.here` evaluated over the whole run.
    public static func studyComparison(_ study: StudySpec?, variants: [VariantResults], axes: [String]) -> StudyComparison? {
        guard let here = study?.here else { return nil }
        var ev = ExpressionEvaluator(variants: variants, axes: axes)
        var out = StudyComparison(expression: here.text)
        do {
            let v = try ev.evaluate(here.expression)
            guard let d = v.number else { throw ExpressionEvaluator.Failure(problem: "gives \(v.display), not a number", fix: "name a number") }
            out.value = d
            out.statistic = ev.statistics.last { $0.call == here.expression.text }
        } catch let f as ExpressionEvaluator.Failure {
            out.error = "\(f.problem) (\(f.fix))"
        } catch {
            out.error = "\(error)"
        }
        return out
    }
}
