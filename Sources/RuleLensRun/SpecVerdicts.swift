import Foundation
import RuleLensJobs
import RuleLensNumerics

/// What a spec says about the study it is an analogue of (`study:` as a mapping): the report and the findings page
/// show the study's number beside this run's.
public struct StudySpec: Sendable {
    /// Who and where (`Hu et al., ICML 2024, §4.1`).
    public var citation: String
    /// The study's setting for this claim (model, data, split), in a line.
    public var setting: String?
    /// What the headline number measures (`test accuracy inside the square`).
    public var measure: String?
    /// The study's headline number as it reports it (a number, or text such as `0.19 (inside) vs 0.97 (random)`).
    public var number: String?
    /// The expression that gives this run's number for the same measure, e.g. `mean(eval.test.inside)`; it names one
    /// value (over seeds: inside mean/ci_low/…), and `mean(…)` over seeds comes with its interval.
    public var here: ExpectSpec?
}

/// One way this run departs from the study (`deviations:`): the aspect, the study's choice and this run's.
public struct Deviation: Sendable, Equatable {
    public var aspect: String
    public var study: String
    public var here: String
}

/// Parsing of the verdict keys of a spec: `study:` (text or a mapping), `deviations:`, `seeds:`, and the checks of
/// `preconditions:` and `expect:`.
enum VerdictSpecParser {
    typealias Err = (_ line: Int, _ problem: String, _ fix: String) -> RuleLensError

    /// Seed values from `seeds: N` (0…N−1) or `seeds: [a, b, c]` (integers, each once); nil without the key.
    static func seeds(_ node: SpecNode?, limits: SpecLimits = .standard, path: String = "", _ err: Err) throws -> [String]? {
        guard let node else { return nil }
        let fix = "write `seeds: 5` (seeds 0…4) or `seeds: [0, 7, 42]`"
        switch node {
        case .scalar(let s, let line):
            guard let n = Int(s), n >= 1 else { throw err(line, "seeds: \(s) is not a count of seeds", fix) }
            guard n <= limits.variants else {
                throw limits.exceeded("variants", "\(path) line \(line): seeds: \(n) makes \(n) variants", lessFix: "run fewer seeds")
            }
            return (0..<n).map(String.init)
        case .list(let items, let line):
            let values = items.compactMap(\.scalar)
            guard !values.isEmpty, values.count == items.count, values.allSatisfy({ UInt64($0) != nil }) else {
                throw err(line, "seeds must be a list of non-negative integers", fix)
            }
            guard Set(values).count == values.count else { throw err(line, "seeds lists a seed twice", "list each seed once") }
            return values
        case .map(_, let line):
            throw err(line, "seeds must be a count or a list", fix)
        }
    }

    /// `study:` as one line of text (the citation) or a mapping {citation, setting, measure, number, here}.
    static func study(_ node: SpecNode?, steps: [StepSpec], sweep: [(key: String, values: [String])], space: AxisSpace,
                      _ err: Err) throws -> (String?, StudySpec?) {
        guard let node else { return (nil, nil) }
        switch node {
        case .scalar(let s, _): return (s.isEmpty ? nil : s, nil)
        case .list(_, let line):
            throw err(line, "study must be text or a mapping", "write `study: {citation: …, setting: …, measure: …, number: …, here: EXPRESSION}`")
        case .map(let pairs, let line):
            let keys = ["citation", "setting", "measure", "number", "here"]
            for (k, v) in pairs where !keys.contains(k) {
                throw err(v.line, "unknown key \(k) in study", "the keys of study are: \(keys.joined(separator: ", "))")
            }
            func text(_ k: String) throws -> String? {
                guard let v = pairs.first(where: { $0.key == k })?.value else { return nil }
                guard let s = v.scalar else { throw err(v.line, "study.\(k) must be text", "write `\(k): …` on one line") }
                return s
            }
            guard let citation = try text("citation"), !citation.isEmpty else {
                throw err(line, "study needs a citation", "add `citation: Author et al., venue year` to study")
            }
            var here: ExpectSpec? = nil
            if let hereNode = pairs.first(where: { $0.key == "here" })?.value {
                let check = try self.check(hereNode, what: "study.here", allowedKeys: [], steps: steps, sweep: sweep, space: space, err)
                if !space.freeAxes(check.expression).isEmpty {
                    throw err(hereNode.line, "study.here `\(check.text)` reads one value per variant",
                              "name one value: wrap it in mean(…) (over seeds, with its interval) or select the variant [var=value]")
                }
                here = check
            }
            return (citation, StudySpec(citation: citation, setting: try text("setting"), measure: try text("measure"),
                                        number: try text("number"), here: here))
        }
    }

    /// `deviations:`: a list of {aspect, study, here}.
    static func deviations(_ node: SpecNode?, _ err: Err) throws -> [Deviation] {
        guard let node else { return [] }
        let fix = "write each as `- {aspect: model, study: GPT-2 small (pretrained), here: 2-layer GPT from scratch}`"
        guard case .list(let items, _) = node else { throw err(node.line, "deviations must be a list", fix) }
        return try items.map { item in
            guard case .map(let pairs, let line) = item else { throw err(item.line, "a deviation is a mapping", fix) }
            for (k, v) in pairs where !["aspect", "study", "here"].contains(k) {
                throw err(v.line, "unknown key \(k) in a deviation", "a deviation has aspect:, study: and here:")
            }
            func text(_ k: String) throws -> String {
                guard let s = pairs.first(where: { $0.key == k })?.value.scalar, !s.isEmpty else {
                    throw err(line, "a deviation needs \(k):", fix)
                }
                return s
            }
            return Deviation(aspect: try text("aspect"), study: try text("study"), here: try text("here"))
        }
    }

    /// A list of checks (`preconditions:` or `expect:`): each an expression, or a mapping with `that:` and the
    /// `allowedKeys` (`why`, and `id` for preconditions or `needs` for expectations).
    static func checks(_ node: SpecNode?, what: String, allowedKeys: [String], steps: [StepSpec],
                       sweep: [(key: String, values: [String])], space: AxisSpace, limits: SpecLimits = .standard,
                       path: String = "", _ err: Err) throws -> [ExpectSpec] {
        guard let node else { return [] }
        guard case .list(let items, _) = node else {
            throw err(node.line, "\(what) must be a list", "write each check as `- eval.test.centre < eval.test.rim - 0.2`")
        }
        return try items.map { try check($0, what: what, allowedKeys: allowedKeys, steps: steps, sweep: sweep, space: space,
                                         limits: limits, path: path, err) }
    }

    /// One check: the expression parsed, every path it reads checked against the step ids and sweep variables.
    static func check(_ item: SpecNode, what: String, allowedKeys: [String], steps: [StepSpec],
                      sweep: [(key: String, values: [String])], space: AxisSpace, limits: SpecLimits = .standard,
                      path: String = "", _ err: Err) throws -> ExpectSpec {
        var text: String, why: String? = nil, id: String? = nil, needs: [String]? = nil
        switch item {
        case .scalar(let s, _): text = s
        case .map(let pairs, _) where !allowedKeys.isEmpty:
            guard let that = pairs.first(where: { $0.key == "that" })?.value.scalar else {
                throw err(item.line, "an entry of \(what) is an expression, or {that: EXPRESSION, why: TEXT}", "write `- that: x > 0.5` with an optional `why:`")
            }
            for (k, v) in pairs where k != "that" && !allowedKeys.contains(k) {
                throw err(v.line, "unknown key \(k) in an entry of \(what)", "an entry of \(what) has that:, " + allowedKeys.map { "\($0):" }.joined(separator: ", "))
            }
            text = that
            why = pairs.first { $0.key == "why" }?.value.scalar
            if let node = pairs.first(where: { $0.key == "id" })?.value {
                guard let s = node.scalar, SpecParser.isIdentifier(s) else {
                    throw err(node.line, "precondition id \(node.commandLineText) is not a plain identifier", "use letters, digits and _ (expectations name it in needs:)")
                }
                id = s
            }
            if let node = pairs.first(where: { $0.key == "needs" })?.value {
                switch node {
                case .list(let names, _): needs = names.compactMap(\.scalar)
                case .scalar(let s, _): needs = s.isEmpty ? [] : [s]
                case .map: throw err(node.line, "needs must list precondition ids", "write `needs: [fits]`, or `needs: []` for a check that needs none")
                }
            }
        default:
            throw err(item.line, "an entry of \(what) is an expression", "write e.g. `- eval.test.accuracy > 0.9`")
        }
        guard text.count <= limits.expressionLength else {
            throw limits.exceeded("expression-length", "\(path) line \(item.line): an expression of \(what) has \(text.count) characters",
                                  lessFix: "split it into several checks")
        }
        let expression: Expression
        do { expression = try Expression.parse(text, maxDepth: limits.expressionDepth) } catch let e as ExpressionError {
            if let limit = e.limit {
                throw limits.exceeded(limit, "\(path) line \(item.line): expression `\(text)` is \(e.problem) at column \(e.column)",
                                      lessFix: "split it into several checks")
            }
            throw err(item.line, "malformed expression `\(text)`: \(e.problem) (column \(e.column))",
                      "expressions compare result paths and numbers, e.g. `eval.test.centre < eval.test.rim - 0.2`; see Probes/README.md")
        }
        for (p, _) in expression.paths where !steps.contains(where: { $0.id == p[0] }) {
            throw err(item.line, "expression `\(text)` reads \(p.joined(separator: ".")), but no step has the id \(p[0])",
                      "step ids here: \(steps.map(\.id).joined(separator: ", "))")
        }
        for (_, sel) in expression.paths {
            for (k, v) in sel ?? [:] {
                guard let values = sweep.first(where: { $0.key == k })?.values else {
                    throw err(item.line, "expression `\(text)` selects [\(k)=…], but \(k) is not a sweep variable",
                              sweep.isEmpty ? "the spec has no sweep: drop the [ ]" : "sweep variables: \(sweep.map(\.key).joined(separator: ", "))")
                }
                guard values.contains(v) else {
                    throw err(item.line, "expression `\(text)` selects \(k)=\(v), which the sweep does not have", "values of \(k): \(values.joined(separator: ", "))")
                }
            }
        }
        try checkIntervals(expression, text: text, line: item.line, space: space, err)
        return ExpectSpec(text: text, expression: expression, why: why, line: item.line, id: id, needs: needs)
    }

    /// An interval (ci_low, ci_high, sd) needs values over an axis its argument leaves open (normally `seed`).
    static func checkIntervals(_ e: Expression, text: String, line: Int, space: AxisSpace, _ err: Err) throws {
        func walk(_ e: Expression) throws {
            switch e {
            case .number, .string, .bool, .path: return
            case .unary(_, let x): try walk(x)
            case .binary(_, let a, let b): try walk(a); try walk(b)
            case .compare(let es, _): for x in es { try walk(x) }
            case .call(let f, let args):
                guard Expression.intervalFunctions.contains(f) else { for a in args { try walk(a) }; return }
                guard args.count == 1 else {
                    throw err(line, "\(f) takes one argument in `\(text)`", "write \(f)(x): x is read once per seed, e.g. \(f)(a[split=random] - a[split=lso])")
                }
                guard space.freeAxes(args[0]).isEmpty else { return }   // aggregates nested inside range over what this one leaves them
                let seeds = Set(space.points.compactMap { $0["seed"] }).count
                throw err(line, "\(f)(\(args[0].text)) in `\(text)` ranges over no variable with two or more values",
                          !space.axes.contains("seed") ? "add `seeds: 5` to the spec (the steps run once per seed; the interval is over seeds)"
                          : seeds < 2 ? "give `seeds:` at least two values (3 or more; 5 where a run is under a minute)"
                          : "leave [seed=…] out of its paths: the interval is over seeds")
            }
        }
        try walk(e)
    }

    /// Every `needs:` names a precondition.
    static func checkNeeds(_ expects: [ExpectSpec], preconditions: [ExpectSpec], _ err: Err) throws {
        let ids = preconditions.compactMap(\.id)
        for e in expects {
            for name in e.needs ?? [] where !ids.contains(name) {
                throw err(e.line, "expectation `\(e.text)` needs \(name), which is not a precondition id",
                          ids.isEmpty ? "give the precondition `id: \(name)`" : "precondition ids: \(ids.joined(separator: ", "))")
            }
        }
    }
}
