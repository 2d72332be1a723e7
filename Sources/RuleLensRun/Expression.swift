import Foundation

/// An `expect:` expression over a run's results, e.g. `eval.test.centre < eval.test.rim - 0.2`.
///
/// Grammar (lowest precedence first): `or`, `and`, `not`, comparisons (`< <= > >= == !=`, chainable: `0 < x < 1`),
/// `+ -`, `* /`, unary `-`, and primaries: numbers, `'strings'`, `true`/`false`, result paths
/// (`step.key.key`, array indices as keys: `eval.test.rings.0`), a path with a variant selector
/// (`eval.test.inside[task=addition,split=random]`), function calls, parentheses.
/// Functions: `min max mean sum count` over their arguments, over arrays, and — given one argument — over every variant
/// that argument leaves free (the sweep variables and `seed` its paths do not name); `all any` likewise over booleans;
/// `ci_low ci_high sd` (statistics over seeds, Statistics.swift); `spearman(x, y)`, `spearman(x)`; `abs(x)`;
/// `saturation(x, y)` (a saturating curve over the swept variants, within a seed).
public indirect enum Expression: Equatable, Sendable {
    case number(Double)
    case string(String)
    case bool(Bool)
    case path([String], selector: [String: String]?)
    case unary(String, Expression)
    case binary(String, Expression, Expression)
    /// A chain of comparisons `a < b <= c`: operands and operators.
    case compare([Expression], [String])
    case call(String, [Expression])

    public static let functions: Set<String> = ["min", "max", "mean", "sum", "count", "all", "any", "abs",
                                                "ci_low", "ci_high", "sd", "spearman", "saturation"]
    /// Functions that, given one argument, range over the variants it leaves free.
    static let aggregates: Set<String> = ["min", "max", "mean", "sum", "count", "all", "any", "ci_low", "ci_high", "sd"]
    /// Aggregates that compare intervals: they need at least two values.
    static let intervalFunctions: Set<String> = ["ci_low", "ci_high", "sd"]

    /// Parses `text`; errors give the column and what was expected. Nesting deeper than `maxDepth` (parentheses,
    /// calls, unary `-` and `not`) is refused, so that the parser's recursion cannot overflow the stack.
    public static func parse(_ text: String, maxDepth: Int = SpecLimits.standard.expressionDepth) throws -> Expression {
        var p = ExpressionParser(text: text)
        p.maxDepth = maxDepth
        let e = try p.parseOr()
        if let t = p.peek {
            throw p.error(t.text == "=" ? "'=' is not a comparison (use ==)" : "unexpected '\(t.text)'", at: t.offset)
        }
        return e
    }

    /// Every result path the expression reads (with its selector), in order.
    public var paths: [(path: [String], selector: [String: String]?)] {
        switch self {
        case .number, .string, .bool: return []
        case .path(let p, let s): return [(p, s)]
        case .unary(_, let e): return e.paths
        case .binary(_, let a, let b): return a.paths + b.paths
        case .compare(let es, _): return es.flatMap(\.paths)
        case .call(_, let args): return args.flatMap(\.paths)
        }
    }

    /// Whether a path without a selector appears outside every aggregate: then the expression is read once per variant.
    public var readsCurrentVariant: Bool {
        switch self {
        case .number, .string, .bool: return false
        case .path(_, let s): return s == nil
        case .unary(_, let e): return e.readsCurrentVariant
        case .binary(_, let a, let b): return a.readsCurrentVariant || b.readsCurrentVariant
        case .compare(let es, _): return es.contains { $0.readsCurrentVariant }
        case .call(let f, let args): return Expression.aggregates.contains(f) && args.count == 1 ? false : args.contains { $0.readsCurrentVariant }
        }
    }

    /// Whether the expression calls one of `names` anywhere.
    public func calls(_ names: Set<String>) -> Bool {
        switch self {
        case .number, .string, .bool, .path: return false
        case .unary(_, let e): return e.calls(names)
        case .binary(_, let a, let b): return a.calls(names) || b.calls(names)
        case .compare(let es, _): return es.contains { $0.calls(names) }
        case .call(let f, let args): return names.contains(f) || args.contains { $0.calls(names) }
        }
    }

    /// The expression as text (normalised spacing, parentheses where precedence needs them): names a statistic in the report.
    public var text: String { render(0) }

    /// Precedence levels: or 1, and 2, not 3, comparison 4, + - 5, * / 6, unary minus 7, primary 8.
    private func render(_ outer: Int) -> String {
        func wrap(_ level: Int, _ s: String) -> String { level < outer ? "(\(s))" : s }
        switch self {
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
        case .string(let s): return "'\(s)'"
        case .bool(let b): return b ? "true" : "false"
        case .path(let p, let sel):
            return p.joined(separator: ".") + (sel.map { "[" + $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "]" } ?? "")
        case .unary(let op, let e):
            return op == "not" ? wrap(3, "not " + e.render(3)) : wrap(7, "-" + e.render(7))
        case .binary(let op, let a, let b):
            let level = op == "or" ? 1 : op == "and" ? 2 : op == "+" || op == "-" ? 5 : 6
            // Left-associative: the right operand of - and / needs parentheses at the same level.
            return wrap(level, a.render(level) + " \(op) " + b.render(level + 1))
        case .compare(let es, let ops):
            var s = es[0].render(5)
            for (i, op) in ops.enumerated() { s += " \(op) " + es[i + 1].render(5) }
            return wrap(4, s)
        case .call(let f, let args):
            return f + "(" + args.map { $0.render(0) }.joined(separator: ", ") + ")"
        }
    }
}

/// The error of a malformed expression: the problem and the column (1-based).
public struct ExpressionError: Error, CustomStringConvertible, Sendable {
    public let problem: String
    public let column: Int
    /// The `SpecLimits` name when the expression went past a limit (then raising it is a fix).
    public var limit: String? = nil
    public var description: String { "\(problem) at column \(column)" }
}

struct ExpressionToken {
    enum Kind { case number, string, ident, op, punct }
    let kind: Kind
    let text: String
    let offset: Int
}

struct ExpressionParser {
    let tokens: [ExpressionToken]
    var index = 0
    var lexError: ExpressionError?
    /// Current nesting and its bound (see `Expression.parse`).
    var depth = 0
    var maxDepth = SpecLimits.standard.expressionDepth

    init(text: String) {
        var out: [ExpressionToken] = []
        let chars = Array(text)
        var i = 0
        var lexError: ExpressionError? = nil
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if c.isNumber {
                i += 1
                // A number after '.' is a path key (rings.0): digits only.
                let afterDot = out.last?.text == "."
                while i < chars.count, chars[i].isNumber || (!afterDot && chars[i] == "." && i + 1 < chars.count && chars[i + 1].isNumber) { i += 1 }
                if i < chars.count, chars[i] == "e" || chars[i] == "E" {
                    var j = i + 1
                    if j < chars.count, chars[j] == "-" || chars[j] == "+" { j += 1 }
                    if j < chars.count, chars[j].isNumber { i = j; while i < chars.count, chars[i].isNumber { i += 1 } }
                }
                out.append(.init(kind: .number, text: String(chars[start..<i]), offset: start))
            } else if c.isLetter || c == "_" {
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
                out.append(.init(kind: .ident, text: String(chars[start..<i]), offset: start))
            } else if c == "'" || c == "\"" {
                i += 1
                while i < chars.count, chars[i] != c { i += 1 }
                if i >= chars.count { lexError = lexError ?? ExpressionError(problem: "unterminated string", column: start + 1); break }
                out.append(.init(kind: .string, text: String(chars[(start + 1)..<i]), offset: start))
                i += 1
            } else if "<>=!".contains(c) {
                if i + 1 < chars.count, chars[i + 1] == "=" { i += 2 } else { i += 1 }
                let op = String(chars[start..<i])
                if op == "!" {
                    lexError = lexError ?? ExpressionError(problem: "'!' is not an operator (use != or not)", column: start + 1)
                }
                out.append(.init(kind: .op, text: op, offset: start))
            } else if "+-*/".contains(c) {
                i += 1
                out.append(.init(kind: .op, text: String(c), offset: start))
            } else if "()[].,".contains(c) {
                i += 1
                out.append(.init(kind: .punct, text: String(c), offset: start))
            } else {
                lexError = lexError ?? ExpressionError(problem: "unexpected character '\(c)'", column: start + 1)
                i += 1
            }
        }
        tokens = out
        self.lexError = lexError
    }

    var peek: ExpressionToken? { index < tokens.count ? tokens[index] : nil }

    func error(_ problem: String, at offset: Int?) -> ExpressionError {
        ExpressionError(problem: problem, column: (offset ?? (tokens.last.map { $0.offset + $0.text.count } ?? 0)) + 1)
    }

    mutating func next() -> ExpressionToken? { defer { index += 1 }; return peek }

    mutating func accept(_ text: String) -> Bool {
        if let t = peek, t.text == text, t.kind != .string { index += 1; return true }
        return false
    }

    mutating func expect(_ text: String) throws {
        guard accept(text) else {
            throw error("expected '\(text)'" + (peek.map { " but found '\($0.text)'" } ?? " but the expression ended"), at: peek?.offset)
        }
    }

    /// Enters one level of nesting at `offset`; the caller leaves it with `depth -= 1`.
    mutating func enter(at offset: Int?) throws {
        depth += 1
        guard depth <= maxDepth else {
            var e = error("nested too deeply (parentheses, function calls, - and not)", at: offset)
            e.limit = "expression-depth"
            throw e
        }
    }

    mutating func parseOr() throws -> Expression {
        if let lexError { throw lexError }
        var e = try parseAnd()
        while accept("or") { e = .binary("or", e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws -> Expression {
        var e = try parseNot()
        while accept("and") { e = .binary("and", e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws -> Expression {
        if accept("not") { try enter(at: peek?.offset); defer { depth -= 1 }; return .unary("not", try parseNot()) }
        return try parseComparison()
    }

    mutating func parseComparison() throws -> Expression {
        let first = try parseSum()
        var operands = [first], ops: [String] = []
        while let t = peek, t.kind == .op, ["<", "<=", ">", ">=", "==", "!="].contains(t.text) {
            index += 1
            ops.append(t.text)
            operands.append(try parseSum())
        }
        return ops.isEmpty ? first : .compare(operands, ops)
    }

    mutating func parseSum() throws -> Expression {
        var e = try parseProduct()
        while let t = peek, t.kind == .op, t.text == "+" || t.text == "-" {
            index += 1
            e = .binary(t.text, e, try parseProduct())
        }
        return e
    }

    mutating func parseProduct() throws -> Expression {
        var e = try parseUnary()
        while let t = peek, t.kind == .op, t.text == "*" || t.text == "/" {
            index += 1
            e = .binary(t.text, e, try parseUnary())
        }
        return e
    }

    mutating func parseUnary() throws -> Expression {
        if let t = peek, t.kind == .op, t.text == "-" {
            index += 1
            try enter(at: t.offset); defer { depth -= 1 }
            return .unary("-", try parseUnary())
        }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws -> Expression {
        guard let t = next() else { throw error("the expression ended where a value was expected", at: nil) }
        switch t.kind {
        case .number:
            guard let d = Double(t.text) else { throw error("malformed number \(t.text)", at: t.offset) }
            return .number(d)
        case .string:
            return .string(t.text)
        case .punct where t.text == "(":
            try enter(at: t.offset); defer { depth -= 1 }
            let e = try parseOr()
            try expect(")")
            return e
        case .ident:
            if t.text == "true" { return .bool(true) }
            if t.text == "false" { return .bool(false) }
            if ["and", "or", "not"].contains(t.text) { throw error("'\(t.text)' where a value was expected", at: t.offset) }
            if accept("(") {
                try enter(at: t.offset); defer { depth -= 1 }
                guard Expression.functions.contains(t.text) else {
                    throw error("unknown function \(t.text) (known: \(Expression.functions.sorted().joined(separator: ", ")))", at: t.offset)
                }
                var args: [Expression] = []
                if !accept(")") {
                    repeat { args.append(try parseOr()) } while accept(",")
                    try expect(")")
                }
                guard !args.isEmpty else { throw error("\(t.text)() needs an argument", at: t.offset) }
                return .call(t.text, args)
            }
            var path = [t.text]
            while accept(".") {
                guard let k = next(), k.kind == .ident || k.kind == .number else {
                    throw error("expected a key after '.'", at: peek?.offset)
                }
                path.append(k.text)
            }
            var selector: [String: String]? = nil
            if accept("[") {
                var sel: [String: String] = [:]
                repeat {
                    guard let name = next(), name.kind == .ident else { throw error("expected a sweep variable name in [ ]", at: peek?.offset) }
                    if !accept("==") { try expect("=") }
                    var value = ""
                    // A value: a run of tokens up to ',' or ']' (e.g. modular-addition, 0.5, leave-square-out).
                    while let v = peek, !(v.kind == .punct && (v.text == "," || v.text == "]")) { value += v.text; index += 1 }
                    guard !value.isEmpty else { throw error("expected a value for \(name.text) in [ ]", at: peek?.offset) }
                    sel[name.text] = value
                } while accept(",")
                try expect("]")
                selector = sel
            }
            return .path(path, selector: selector)
        default:
            throw error("unexpected '\(t.text)'", at: t.offset)
        }
    }
}
