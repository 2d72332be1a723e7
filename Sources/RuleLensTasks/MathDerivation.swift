import RuleLensNumerics

/// Study 2's mathematical reasoning: one symbolic derivation step. The premise is an expression and the
/// operation to apply; the conclusion is the simplified result; the rule label is the operator.
public enum MathDerivation {
    /// The operators, in rule_id order.
    public static let operators = ["differentiate", "integrate", "add", "subtract", "multiply", "divide"]

    static let functions = ["sin", "cos", "exp", "log"]

    /// A random expression tree over x (and sometimes y) with small integers and sin/cos/exp/log of k·x.
    public static func randomTree(depth: Int, rng: inout SeededRNG) -> Expr {
        if depth == 0 || rng.int(below: 100) < 35 {
            switch rng.int(below: 10) {
            case 0, 1, 2: return .number(1 + rng.int(below: 9))
            case 3, 4, 5: return .variable("x")
            case 6: return .variable("y")
            default:
                let k = rng.int(below: 3) == 0 ? 1 + rng.int(below: 3) : 1
                let arg: Expr = k == 1 ? .variable("x") : .mul(.number(k), .variable("x"))
                return .function(functions[rng.int(below: functions.count)], arg)
            }
        }
        let l = randomTree(depth: depth - 1, rng: &rng)
        switch rng.int(below: 9) {
        case 0, 1, 2: return .add(l, randomTree(depth: depth - 1, rng: &rng))
        case 3, 4: return .sub(l, randomTree(depth: depth - 1, rng: &rng))
        case 5, 6, 7: return .mul(l, randomTree(depth: depth - 1, rng: &rng))
        default: return .pow(l, 2)
        }
    }

    /// A random non-constant expression in canonical form, short enough to read.
    static func randomExpression(rng: inout SeededRNG, maxTerms: Int = 4, maxLength: Int = 40) -> Polynomial {
        while true {
            guard let p = try? randomTree(depth: 3, rng: &rng).simplified() else { continue }
            if p.isConstant || p.terms.count > maxTerms || p.description.count > maxLength { continue }
            return p
        }
    }

    /// A random single term, e.g. `3*x^2`, `y`, `sin(x)`; drawn from `source`'s terms half the time so that
    /// like terms meet and the simplifier has work to do.
    static func randomTerm(near source: Polynomial, rng: inout SeededRNG) -> Polynomial {
        let c = Rational((1 + rng.int(below: 5)) * (rng.int(below: 3) == 0 ? -1 : 1))
        let own = source.orderedTerms.filter { !$0.0.factors.isEmpty }
        if !own.isEmpty && rng.int(below: 2) == 0 {
            return Polynomial(c, own[rng.int(below: own.count)].0)
        }
        let p = randomExpression(rng: &rng, maxTerms: 1, maxLength: 12)
        return Polynomial(c, p.terms.first!.key)
    }

    /// One derivation step with operator `op` (an index into `operators`), or nil if this draw does not work
    /// (e.g. an integrand the engine has no rule for); the caller draws again.
    static func step(op: Int, rng: inout SeededRNG) -> Example? {
        let e = randomExpression(rng: &rng)
        switch operators[op] {
        case "differentiate":
            let v = e.description.contains("y") && rng.int(below: 4) == 0 ? "y" : "x"
            return instance(op: op, e: e, term: nil, variable: v)
        case "integrate":
            return instance(op: op, e: e, term: nil)
        default:
            return instance(op: op, e: e, term: operand(op: op, near: e, rng: &rng))
        }
    }

    /// The operand of add/subtract/multiply/divide for expression `e`, drawn as the generator draws it.
    static func operand(op: Int, near e: Polynomial, rng: inout SeededRNG) -> Polynomial {
        if operators[op] == "multiply" && rng.int(below: 3) == 0 { return randomExpression(rng: &rng, maxTerms: 2, maxLength: 12) }
        return randomTerm(near: e, rng: &rng)
    }

    /// Operator `op` applied to `e` (with operand `t` for add/subtract/multiply/divide, variable `v` for
    /// differentiate) as an example, or nil when it has none here (no integration rule, a zero or too long result).
    static func instance(op: Int, e: Polynomial, term t: Polynomial?, variable v: String = "x") -> Example? {
        let prompt: String
        let result: Polynomial
        switch operators[op] {
        case "differentiate":
            result = e.derivative(v)
            prompt = "differentiate \(e) with respect to \(v)"
        case "integrate":
            guard let r = try? e.integral("x") else { return nil }
            result = r
            prompt = "integrate \(e) with respect to x"
        case "add":
            guard let t else { return nil }
            result = e + t
            prompt = "add \(t) to \(e)"
        case "subtract":
            guard let t else { return nil }
            result = e - t
            prompt = "subtract \(t) from \(e)"
        case "multiply":
            guard let t else { return nil }
            result = e * t
            prompt = "multiply \(grouped(e)) by \(t.terms.count > 1 ? "(\(t))" : t.description)"
        default:
            guard let t, let r = try? e.divided(by: t) else { return nil }
            result = r
            prompt = "divide \(grouped(e)) by \(t.description.hasPrefix("-") ? "(\(t))" : t.description)"
        }
        let conclusion = result.description
        guard !result.isZero, conclusion.count <= 80 else { return nil }
        var example = Example(prompt: prompt, target: conclusion, answer: conclusion, rule: operators[op], ruleId: op)
        // The variables are read from the premise; coefficients and exponents are computed (no single source).
        example.sources = SourceKeys.copiedWords(prompt: prompt, target: conclusion) { $0 == "x" || $0 == "y" }
        return example
    }

    /// Parenthesised when it has more than one term, so "multiply (x + 1) by x" reads one way only.
    static func grouped(_ p: Polynomial) -> String { p.terms.count > 1 ? "(\(p))" : p.description }

    /// `count` distinct steps, operators in round-robin order.
    public static func generate(count: Int, rng: inout SeededRNG) throws -> [Example] {
        var out: [Example] = []
        var seen = Set<String>()
        var attempts = 0
        while out.count < count && attempts < 100 * count {
            attempts += 1
            guard let e = step(op: out.count % operators.count, rng: &rng) else { continue }
            if seen.insert(e.prompt).inserted { out.append(e) }
        }
        return out
    }
}
