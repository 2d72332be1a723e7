import Foundation

/// One variant of a run (one point of the sweep): its variables and its steps' results (`{step id: {...}}`).
public struct VariantResults: Sendable {
    public var id: String
    public var vars: [String: String]
    public var results: RunValue
    public init(id: String, vars: [String: String], results: RunValue) { self.id = id; self.vars = vars; self.results = results }
}

/// Evaluates expressions against the results of every variant, remembering each number read (for the report).
public struct ExpressionEvaluator {
    public let variants: [VariantResults]
    /// The variant bare paths read (nil: none; then a bare path is an error unless there is only one variant).
    public var current: Int?
    /// `path = value` for every path read, in order.
    public private(set) var readings: [(String, RunValue)] = []

    public init(variants: [VariantResults], current: Int? = nil) { self.variants = variants; self.current = current }

    public struct Failure: Error, CustomStringConvertible {
        public let problem: String
        public let fix: String
        public var description: String { problem }
    }

    public mutating func evaluate(_ e: Expression) throws -> RunValue {
        switch e {
        case .number(let d): return .number(d)
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .path(let path, let selector):
            let index: Int
            if let selector {
                let matches = variants.indices.filter { i in selector.allSatisfy { variants[i].vars[$0.key] == $0.value } }
                guard matches.count == 1 else {
                    let known = variants.map(\.id).joined(separator: "; ")
                    throw Failure(problem: "[\(selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))] "
                                  + (matches.isEmpty ? "matches no variant" : "matches \(matches.count) variants"),
                                  fix: "name one variant of the sweep: " + (known.isEmpty ? "(the spec has no sweep)" : known))
                }
                index = matches[0]
            } else if let current {
                index = current
            } else if variants.count == 1 {
                index = 0
            } else {
                throw Failure(problem: "\(path.joined(separator: ".")) is read across \(variants.count) variants",
                              fix: "add a selector such as [\(variants.first?.vars.keys.sorted().first ?? "var")=VALUE], or wrap it in min/max/mean/all/any")
            }
            guard let value = variants[index].results.lookup(path) else {
                throw missing(path, in: variants[index])
            }
            var label = path.joined(separator: ".")
            if let selector { label += "[" + selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "]" }
            else if variants.count > 1 { label += " @ \(variants[index].id)" }
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
            var values = try operands.map { try evaluate($0) }
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
            values.removeAll()
            return .bool(ok)
        case .call(let f, let args):
            if f == "abs" {
                guard args.count == 1 else { throw Failure(problem: "abs takes one argument", fix: "write abs(x)") }
                return .number(abs(try number(try evaluate(args[0]), args[0])))
            }
            var items: [RunValue] = []
            if args.count == 1, args[0].readsCurrentVariant, current == nil || variants.count > 1 {
                // An aggregate over the sweep: the argument once per variant.
                let saved = current
                for i in variants.indices { current = i; items.append(try evaluate(args[0])) }
                current = saved
            } else {
                items = try args.map { try evaluate($0) }
            }
            // Arrays are flattened, so min(eval.test.rings) is the lowest ring.
            items = items.flatMap { v -> [RunValue] in if case .array(let a) = v { return a } else { return [v] } }
            if f == "count" { return .number(Double(items.count)) }
            if f == "all" || f == "any" {
                let bools = try items.map { try truth($0, e) }
                return .bool(f == "all" ? bools.allSatisfy { $0 } : bools.contains(true))
            }
            let numbers = try items.compactMap { v -> Double? in
                if v == .null { return nil }
                return try number(v, e)
            }
            guard !numbers.isEmpty else { throw Failure(problem: "\(f)() got no numbers", fix: "check the paths it reads") }
            switch f {
            case "min": return .number(numbers.min()!)
            case "max": return .number(numbers.max()!)
            case "sum": return .number(numbers.reduce(0, +))
            default: return .number(numbers.reduce(0, +) / Double(numbers.count))
            }
        }
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
