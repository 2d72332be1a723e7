import RuleLensNumerics

/// Corrupted counterparts of rule-task examples for activation patching (`rulelens data pairs`): the same premises
/// under another rule, with a prompt of the same length in characters (patching aligns positions).
extension MathDerivation {
    /// What a math-derivation prompt applies: the operator (index into `operators`), the expression, the operand of
    /// add/subtract/multiply/divide and the variable of differentiate. The inverse of the prompts `step` writes.
    public static func premises(of prompt: String) throws -> (op: Int, expression: Polynomial, term: Polynomial?, variable: String) {
        func poly(_ text: Substring) throws -> Polynomial {
            var t = text
            if t.hasPrefix("(") && t.hasSuffix(")") { t = t.dropFirst().dropLast() }
            return try Expr.parse(String(t)).simplified()
        }
        func split(_ s: Substring, _ sep: String) throws -> (Substring, Substring) {
            guard let r = s.range(of: sep) else { throw SymbolicError("no '\(sep.trimmingCharacters(in: .whitespaces))' in '\(prompt)'") }
            return (s[..<r.lowerBound], s[r.upperBound...])
        }
        let s = Substring(prompt)
        for (op, name) in operators.enumerated() where s.hasPrefix(name + " ") {
            let rest = s.dropFirst(name.count + 1)
            switch name {
            case "differentiate", "integrate":
                let (e, v) = try split(rest, " with respect to ")
                guard v == "x" || v == "y" else { throw SymbolicError("unknown variable '\(v)' in '\(prompt)'") }
                return (op, try poly(e), nil, String(v))
            case "add":
                let (t, e) = try split(rest, " to ")
                return (op, try poly(e), try poly(t), "x")
            case "subtract":
                let (t, e) = try split(rest, " from ")
                return (op, try poly(e), try poly(t), "x")
            default:
                let (e, t) = try split(rest, " by ")
                return (op, try poly(e), try poly(t), "x")
            }
        }
        throw SymbolicError("'\(prompt)' does not start with an operator (\(operators.joined(separator: ", ")))")
    }

    /// Other operators applied to the same expression whose prompt has `length` characters (Unicode scalars). The
    /// operand of add/subtract/multiply/divide is drawn `draws` times per operator (as `step` draws it, seeded) and
    /// kept when the length fits; differentiate tries x (and y if the expression has it).
    public static func counterparts(of prompt: String, length: Int, rng: inout SeededRNG, draws: Int = 400) throws -> [Example] {
        let p = try premises(of: prompt)
        var out: [Example] = [], seen = Set<String>()
        func keep(_ e: Example?) {
            guard let e, e.prompt.unicodeScalars.count == length, seen.insert(e.prompt).inserted else { return }
            out.append(e)
        }
        for op in operators.indices where op != p.op {
            switch operators[op] {
            case "differentiate":
                for v in ["x", "y"] where v == "x" || p.expression.description.contains("y") {
                    keep(instance(op: op, e: p.expression, term: nil, variable: v))
                }
            case "integrate":
                keep(instance(op: op, e: p.expression, term: nil))
            default:
                for _ in 0..<draws { keep(instance(op: op, e: p.expression, term: operand(op: op, near: p.expression, rng: &rng))) }
            }
        }
        return out
    }
}

extension Explanatory {
    /// The subject of an explanatory conclusion ("a hare", "the sun", as the knowledge base names it) with its class
    /// or thing, or nil (if-then-chain conclusions, "if something … then it …", have none).
    public static func subject(of conclusion: String, kb: KnowledgeBase = .standard) -> String? {
        let names = kb.classes.filter { !kb.things.contains($0) } + kb.things
        let matches = names.filter { n in
            let s = kb.things.contains(n) ? n : KnowledgeBase.withArticle(n)
            return conclusion.hasPrefix(s + " ")
        }
        return matches.max { $0.count < $1.count }
    }

    /// Every instance of inference type `type` about `subject` (a class or thing), in a fixed order: the choices
    /// `step` draws at random, enumerated (if-then-chain has no subject: none).
    public static func instances(type: Int, subject x: String, kb: KnowledgeBase = .standard) -> [Example] {
        func subject(_ s: String) -> String { kb.things.contains(s) ? s : KnowledgeBase.withArticle(s) }
        var made: [([String], String)] = []
        let isClass = kb.classes.contains(x)
        switch inferenceTypes[type] {
        case "substitution" where isClass:
            let chain = [x] + kb.ancestors(of: x)
            for steps in [2, 3] where steps <= chain.count - 1 {
                made.append(((0..<steps).map { "\(subject(chain[$0])) is a kind of \(chain[$0 + 1])" }, "\(subject(x)) is a kind of \(chain[steps])"))
            }
        case "property-inheritance" where isClass:
            for y in kb.ancestors(of: x).prefix(2) {
                for p in kb.classProperties[y] ?? [] { made.append((["\(subject(x)) is a kind of \(y)", "\(subject(y)) \(p)"], "\(subject(x)) \(p)")) }
            }
        case "if-then":
            let props = kb.properties(of: x)
            for r in kb.rules where props.contains(r.condition) {
                made.append((["if something \(r.condition) then it \(r.consequence)", "\(subject(x)) \(r.condition)"], "\(subject(x)) \(r.consequence)"))
            }
        case "conjunction":
            let props = kb.properties(of: x)
            for p1 in props { for p2 in props where p2 != p1 { made.append((["\(subject(x)) \(p1)", "\(subject(x)) \(p2)"], "\(subject(x)) \(p1) and \(p2)")) } }
        case "inheritance-if-then" where isClass:
            for y in kb.ancestors(of: x).prefix(2) {
                for p in kb.classProperties[y] ?? [] {
                    for r in kb.rules where r.condition == p {
                        made.append((["\(subject(x)) is a kind of \(y)", "\(subject(y)) \(p)", "if something \(p) then it \(r.consequence)"], "\(subject(x)) \(r.consequence)"))
                    }
                }
            }
        default: break
        }
        return made.map { example(type: type, premises: $0.0, conclusion: $0.1) }
    }

    /// Instances of the other inference types about the same subject whose prompt has `length` characters.
    public static func counterparts(of e: Example, length: Int, kb: KnowledgeBase = .standard) -> [Example] {
        guard let type = e.ruleId ?? e.rule.flatMap({ inferenceTypes.firstIndex(of: $0) }), let x = subject(of: e.target, kb: kb) else { return [] }
        return inferenceTypes.indices.filter { $0 != type }.flatMap { instances(type: $0, subject: x, kb: kb) }
            .filter { $0.prompt.unicodeScalars.count == length }
    }
}
