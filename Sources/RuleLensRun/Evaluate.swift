import Foundation
import RuleLensNumerics

/// One variant of a run (one point of the sweep): its variables and its steps' results (`{step id: {...}}`).
public struct VariantResults: Sendable {
    public var id: String
    public var vars: [String: String]
    public var results: RunValue
    public init(id: String, vars: [String: String], results: RunValue) { self.id = id; self.vars = vars; self.results = results }
}

/// One statistic an expression computed over seeds (or other free axes): every value it aggregated, and the interval.
public struct StatisticRecord: Sendable, Equatable {
    /// The call as written (normalised), e.g. `ci_low(eval.test.inside[split=random] - eval.test.inside[split=lso])`.
    public var call: String
    public var function: String
    /// The axes it ranged over (usually `seed`).
    public var over: [String]
    /// Each value with the variant it came from (`seed=3`, `task=addition,seed=0`).
    public var values: [(label: String, value: Double)]
    public var mean: Double
    public var sd: Double
    /// The percentile-bootstrap interval of the mean (nil with fewer than two values).
    public var interval: SeedStatistics.Interval?
    /// What the call returned.
    public var result: Double

    public static func == (a: StatisticRecord, b: StatisticRecord) -> Bool {
        a.call == b.call && a.result == b.result && a.values.map(\.value) == b.values.map(\.value)
    }
}

/// Evaluates expressions against the results of every variant, remembering each number read (for the report).
///
/// Variants differ along axes: the sweep variables and, with `seeds:`, `seed`. A path reads the variant named by its
/// selector together with the current context (values of the axes the selector leaves out); an aggregate with one
/// argument evaluates that argument once per combination of the axes it leaves free, so every path in one evaluation
/// reads the same seed — a difference inside `ci_low(…)` is a paired difference.
public struct ExpressionEvaluator {
    public let variants: [VariantResults]
    /// The variants as points on the axes (which axes a path leaves open).
    public let space: AxisSpace
    /// The axes, in the order labels name them.
    public var axes: [String] { space.axes }
    /// Values of the axes fixed so far (a row of a per-variant expectation, or an enclosing aggregate's iteration).
    var context: [String: String]
    var insideAggregate = false
    /// `path = value` for every path read, in order.
    public private(set) var readings: [(String, RunValue)] = []
    /// Every statistic over seeds (or other free axes) computed, in order.
    public private(set) var statistics: [StatisticRecord] = []
    /// Indices of the variants read (a precondition that failed in one of them makes the check inconclusive).
    public private(set) var variantsRead: Set<Int> = []

    /// `axes`: the sweep's variables in order (default: every variable, sorted); `context`: the axis values bare paths
    /// read (a row of a per-variant check); empty reads the only variant.
    public init(variants: [VariantResults], axes: [String]? = nil, context: [String: String] = [:]) {
        self.variants = variants
        space = AxisSpace(axes: axes ?? Array(Set(variants.flatMap(\.vars.keys))).sorted(), points: variants.map(\.vars))
        self.context = context
    }

    /// Bare paths read variant `current` (nil: the only variant, or an error across several).
    public init(variants: [VariantResults], current: Int?) {
        self.init(variants: variants, context: current.map { variants[$0].vars } ?? [:])
    }

    public struct Failure: Error, CustomStringConvertible {
        public let problem: String
        public let fix: String
        public var description: String { problem }
    }

    /// A statistic that is undefined for these values (a rank correlation of constant values): the check that reads it
    /// is INCONCLUSIVE, not FAIL.
    public struct Undefined: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    func selectorText(_ s: [String: String]) -> String {
        s.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// The variant a path reads: the ones its selector matches, narrowed by the current context along the axes where
    /// they differ.
    mutating func resolve(_ path: [String], _ selector: [String: String]?) throws -> Int {
        var candidates = space.matching(selector)
        var target = selector ?? [:]
        for axis in axes {
            guard let value = context[axis], Set(candidates.map { space.points[$0][axis] ?? "" }).count > 1 else { continue }
            candidates = candidates.filter { space.points[$0][axis] == value }
            target[axis] = value
        }
        if candidates.count == 1 { return candidates[0] }
        let known = variants.map(\.id).joined(separator: "; ")
        if candidates.isEmpty {
            throw Failure(problem: "[\(selectorText(target))] matches no variant",
                          fix: "name one variant of the sweep: " + (known.isEmpty ? "(the spec has no sweep)" : known))
        }
        let differing = space.differing(candidates)
        if selector == nil && context.isEmpty {
            throw Failure(problem: "\(path.joined(separator: ".")) is read across \(variants.count) variants",
                          fix: "add a selector such as [\(differing.first ?? "var")=VALUE], or wrap it in min/max/mean/all/any"
                               + (differing.contains("seed") ? " or a statistic over seeds (mean, ci_low, ci_high, sd)" : ""))
        }
        throw Failure(problem: "[\(selectorText(target))] matches \(candidates.count) variants (they differ in \(differing.joined(separator: ", ")))",
                      fix: "name \(differing.joined(separator: " and ")) in the selector, or wrap the path in an aggregate over "
                           + (differing == ["seed"] ? "seeds: mean, ci_low, ci_high, sd" : "them: min, max, mean, all, any"))
    }

    public mutating func evaluate(_ e: Expression) throws -> RunValue {
        switch e {
        case .number(let d): return .number(d)
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .path(let path, let selector):
            let index = try resolve(path, selector)
            variantsRead.insert(index)
            guard let value = variants[index].results.lookup(path) else {
                throw missing(path, in: variants[index])
            }
            var label = path.joined(separator: ".")
            if let selector { label += "[" + selectorText(selector) + "]" }
            // Name the variant when the selector alone does not.
            if variants.count > 1, (selector?.count ?? 0) < axes.count { label += " @ \(variants[index].id)" }
            readings.append((label, value))
            return value
        case .unary(let op, let x):
            let v = try evaluate(x)
            if op == "not" { return .bool(!(try truth(v, e))) }
            return .number(-(try number(v, x)))
        case .binary(let op, let a, let b):
            if op == "and" { return .bool(try truth(try evaluate(a), a) && truth(try evaluate(b), b)) }
            if op == "or" { return .bool(try truth(try evaluate(a), a) || truth(try evaluate(b), b)) }
            let x = try number(try evaluate(a), a), y = try number(try evaluate(b), b)
            switch op {
            case "+": return .number(x + y)
            case "-": return .number(x - y)
            case "*": return .number(x * y)
            default: return .number(x / y)
            }
        case .compare(let operands, let ops):
            let values = try operands.map { try evaluate($0) }
            var ok = true
            for (i, op) in ops.enumerated() {
                let l = values[i], r = values[i + 1]
                if op == "==" || op == "!=", let ls = l.string, let rs = r.string {
                    ok = ok && ((ls == rs) == (op == "=="))
                    continue
                }
                let x = try number(l, operands[i]), y = try number(r, operands[i + 1])
                switch op {
                case "<": ok = ok && x < y
                case "<=": ok = ok && x <= y
                case ">": ok = ok && x > y
                case ">=": ok = ok && x >= y
                case "==": ok = ok && x == y
                default: ok = ok && x != y
                }
            }
            return .bool(ok)
        case .call(let f, let args):
            if f == "abs" {
                guard args.count == 1 else { throw Failure(problem: "abs takes one argument", fix: "write abs(x)") }
                return .number(abs(try number(try evaluate(args[0]), args[0])))
            }
            if f == "spearman" { return try spearman(args) }
            if f == "saturation" { return try saturation(args) }
            return try aggregate(f, args, e)
        }
    }

    /// `min max mean sum count all any ci_low ci_high sd`: over the arguments, or over every combination of the free axes of
    /// a single argument; arrays are flattened, so min(eval.test.rings) is the lowest ring.
    mutating func aggregate(_ f: String, _ args: [Expression], _ e: Expression) throws -> RunValue {
        var items: [(label: String, value: RunValue)] = []
        var over: [String] = []
        if args.count == 1, case let free = space.freeAxes(args[0]).subtracting(insideAggregate ? Array(context.keys) : []), !free.isEmpty {
            // The outermost aggregate ignores the row's context (its argument names every axis it does not range over);
            // a nested one ranges within the enclosing aggregate's current values.
            let base = insideAggregate ? context : [:]
            let saved = (context, insideAggregate)
            defer { (context, insideAggregate) = saved }
            over = axes.filter { free.contains($0) }
            for combo in space.combinations(of: free, agreeing: base) {
                context = base.merging(combo) { a, _ in a }
                insideAggregate = true
                items.append((space.label(combo), try evaluate(args[0])))
            }
        } else {
            let saved = insideAggregate
            defer { insideAggregate = saved }
            if args.count == 1 { insideAggregate = true }
            items = try args.map { ("", try evaluate($0)) }
        }
        items = items.flatMap { item -> [(label: String, value: RunValue)] in
            guard case .array(let a) = item.value else { return [item] }
            return a.enumerated().map { (item.label.isEmpty ? "[\($0.offset)]" : "\(item.label)[\($0.offset)]", $0.element) }
        }
        if f == "count" { return .number(Double(items.count)) }
        if f == "all" || f == "any" {
            let bools = try items.map { try truth($0.value, e) }
            return .bool(f == "all" ? bools.allSatisfy { $0 } : bools.contains(true))
        }
        let numbers = try items.compactMap { item -> (label: String, value: Double)? in
            if item.value == .null { return nil }
            return (item.label, try number(item.value, e))
        }
        // A statistic read per seed that is null in every seed (a step's ρ of constant cells) is undefined, not a broken path.
        if numbers.isEmpty, !items.isEmpty, Expression.intervalFunctions.contains(f) {
            throw Undefined(reason: "\(f)(\(args.map(\.text).joined(separator: ", "))) is undefined: every value it reads is null")
        }
        guard !numbers.isEmpty else { throw Failure(problem: "\(f)() got no numbers", fix: "check the paths it reads") }
        let values = numbers.map(\.value)
        let mean = values.reduce(0, +) / Double(values.count)
        // Statistics over variants (seeds) and every interval are recorded for the report, with the bootstrap interval.
        let recorded = Expression.intervalFunctions.contains(f) || (f == "mean" && !over.isEmpty)
        let interval = recorded && values.count >= 2 ? SeedStatistics.bootstrapMean(values) : nil
        let result: Double
        switch f {
        case "min": result = values.min()!
        case "max": result = values.max()!
        case "sum": result = values.reduce(0, +)
        case "mean": result = mean
        default:
            guard let interval else {
                throw Failure(problem: "\(f)(\(args.map(\.text).joined(separator: ", "))) got \(values.count) value: an interval needs at least 2",
                              fix: "give the spec `seeds: 3` or more (the argument is read once per seed), or leave [seed=…] out of its selectors")
            }
            result = f == "ci_low" ? interval.low : f == "ci_high" ? interval.high : SeedStatistics.standardDeviation(values)
        }
        if recorded {
            statistics.append(StatisticRecord(call: e.text, function: f, over: over, values: numbers, mean: mean,
                                              sd: SeedStatistics.standardDeviation(values), interval: interval, result: result))
        }
        return .number(result)
    }

    /// `spearman(x, y)`: Spearman's ρ between two equally long arrays; `spearman(x)`: between x and its positions
    /// (0, 1, 2, …), a monotone trend. Pairs with a null are left out.
    mutating func spearman(_ args: [Expression]) throws -> RunValue {
        guard args.count == 1 || args.count == 2 else {
            throw Failure(problem: "spearman takes one or two arrays", fix: "write spearman(x, y), or spearman(x) for a trend over positions")
        }
        func array(_ e: Expression) throws -> [RunValue] {
            let v = try evaluate(e)
            guard case .array(let a) = v else {
                throw Failure(problem: "spearman reads arrays; \(e.text) is \(v.display)", fix: "pass per-position values such as eval.test.rings")
            }
            return a
        }
        let x = try array(args[0])
        let y = args.count == 2 ? try array(args[1]) : x.indices.map { RunValue.number(Double($0)) }
        guard x.count == y.count else {
            throw Failure(problem: "spearman: \(args[0].text) has \(x.count) values, \(args[1].text) \(y.count)", fix: "pass arrays of the same length")
        }
        var xs: [Double] = [], ys: [Double] = []
        for (a, b) in zip(x, y) where a != .null && b != .null {
            xs.append(try number(a, args[0])); ys.append(try number(b, args.count == 2 ? args[1] : args[0]))
        }
        guard xs.count >= 3 else {
            throw Undefined(reason: "spearman(\(args.map(\.text).joined(separator: ", "))) has \(xs.count) pairs of numbers; a rank correlation needs 3")
        }
        guard let rho = SeedStatistics.spearman(xs, ys) else {
            throw Undefined(reason: "spearman(\(args.map(\.text).joined(separator: ", "))) is undefined: one side is constant ("
                            + (Set(xs).count == 1 ? "every value \(RunValue.format(xs[0]))" : "the positions") + ")")
        }
        return .number(rho)
    }

    /// `saturation(x, y)`: the saturating curve y = a·x/(x + k) fitted by least squares to the (x, y) pairs of every
    /// variant the arguments leave free other than the seed (e.g. training-set sizes), within the current seed; the
    /// value is the share of the fitted asymptote reached at the largest x, x_max/(x_max + k). Near 1: the curve has
    /// flattened within the sizes measured. `ci_low(saturation(…))` is its interval over seeds.
    mutating func saturation(_ args: [Expression]) throws -> RunValue {
        guard args.count == 2 else {
            throw Failure(problem: "saturation takes two arguments", fix: "write saturation(x, y), e.g. saturation(subset.train, eval.test.accuracy)")
        }
        let free = space.freeAxes(args[0]).union(space.freeAxes(args[1])).subtracting(["seed"]).subtracting(Array(context.keys))
        guard !free.isEmpty else {
            throw Failure(problem: "saturation(\(args[0].text), \(args[1].text)) reads one variant; a curve needs the variants of a sweep",
                          fix: "leave the swept variable (e.g. the training-set size) out of the selectors")
        }
        let saved = (context, insideAggregate)
        defer { (context, insideAggregate) = saved }
        var xs: [Double] = [], ys: [Double] = []
        for combo in space.combinations(of: free, agreeing: saved.0) {
            context = saved.0.merging(combo) { a, _ in a }
            insideAggregate = true
            let x = try evaluate(args[0]), y = try evaluate(args[1])
            if x == .null || y == .null { continue }
            xs.append(try number(x, args[0])); ys.append(try number(y, args[1]))
        }
        guard let fit = SaturatingFit.fit(x: xs, y: ys) else {
            throw Undefined(reason: "saturation(\(args[0].text), \(args[1].text)) cannot fit a curve to \(xs.count) points (it needs 3 with x > 0)")
        }
        return .number(fit.saturation(xs.max()!))
    }

    func number(_ v: RunValue, _ e: Expression) throws -> Double {
        if let d = v.number { return d }
        throw Failure(problem: "\(describe(e)) is \(v.display), not a number", fix: "compare numeric results (see results.json for the keys)")
    }

    func truth(_ v: RunValue, _ e: Expression) throws -> Bool {
        if case .bool(let b) = v { return b }
        throw Failure(problem: "\(describe(e)) is \(v.display), not true/false", fix: "use a comparison such as x > 0.5")
    }

    func describe(_ e: Expression) -> String {
        if case .path(let p, _) = e { return p.joined(separator: ".") }
        return "a value"
    }

    func missing(_ path: [String], in variant: VariantResults) -> Failure {
        var node = variant.results
        var known: [String] = []
        for key in path {
            guard let child = node[key] else {
                return Failure(problem: "the results have no \(path.joined(separator: "."))"
                               + (variants.count > 1 ? " (variant \(variant.id))" : "")
                               + " — no key \(key)" + (known.isEmpty ? "" : " under \(known.joined(separator: "."))"),
                               fix: node.childKeys.isEmpty ? "check the step id and key"
                                    : "keys there: \(node.childKeys.prefix(24).joined(separator: ", "))")
            }
            known.append(key)
            node = child
        }
        return Failure(problem: "the results have no \(path.joined(separator: "."))", fix: "check the path")
    }
}
