import Foundation

/// A small symbolic engine for the math-derivation task: expression trees, a canonical sum-of-terms form
/// that does the simplification (collects like terms, multiplies out, cancels powers), printing in a syntax
/// SymPy parses (`^` for powers), differentiation and integration.
///
/// The canonical form is a sum of terms `coefficient · Π atom^power`, where an atom is a variable or a
/// function (sin, cos, exp, log) of `k·variable`. That family is closed under +, −, ×, division by a term
/// and differentiation, which is all the derivation steps need.
public struct SymbolicError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// An exact fraction, always reduced, with a positive denominator.
public struct Rational: Hashable, Comparable, CustomStringConvertible, Sendable {
    public let num: Int
    public let den: Int

    public init(_ n: Int, _ d: Int = 1) {
        precondition(d != 0, "zero denominator")
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? abs(a) : gcd(b, a % b) }
        let g = max(gcd(n, d), 1), s = d < 0 ? -1 : 1
        num = s * n / g; den = s * d / g
    }

    public static let zero = Rational(0), one = Rational(1)
    public var isZero: Bool { num == 0 }
    public var value: Double { Double(num) / Double(den) }
    public var magnitude: Rational { Rational(abs(num), den) }
    public var description: String { den == 1 ? String(num) : "\(num)/\(den)" }

    public static func + (l: Rational, r: Rational) -> Rational { Rational(l.num * r.den + r.num * l.den, l.den * r.den) }
    public static func - (l: Rational, r: Rational) -> Rational { Rational(l.num * r.den - r.num * l.den, l.den * r.den) }
    public static func * (l: Rational, r: Rational) -> Rational { Rational(l.num * r.num, l.den * r.den) }
    public static func / (l: Rational, r: Rational) -> Rational { Rational(l.num * r.den, l.den * r.num) }
    public static prefix func - (x: Rational) -> Rational { Rational(-x.num, x.den) }
    public static func < (l: Rational, r: Rational) -> Bool { l.num * r.den < r.num * l.den }
}

/// A variable, or a function of `k·variable`.
public enum Atom: Hashable, Comparable, Sendable {
    case variable(String)
    case function(String, Int, String)

    public var text: String {
        switch self {
        case .variable(let v): return v
        case .function(let f, let k, let v): return k == 1 ? "\(f)(\(v))" : "\(f)(\(k)*\(v))"
        }
    }

    public func dependsOn(_ v: String) -> Bool {
        switch self {
        case .variable(let w): return w == v
        case .function(_, _, let w): return w == v
        }
    }

    /// Variables sort before functions, then by text.
    public static func < (l: Atom, r: Atom) -> Bool {
        switch (l, r) {
        case (.variable, .function): return true
        case (.function, .variable): return false
        default: return l.text < r.text
        }
    }
}

/// A product of atoms with non-zero integer powers, sorted by atom.
public struct Monomial: Hashable, Sendable {
    public var factors: [(atom: Atom, power: Int)]

    public static let one = Monomial(factors: [])

    public init(factors: [(atom: Atom, power: Int)]) {
        var merged: [Atom: Int] = [:]
        for f in factors { merged[f.atom, default: 0] += f.power }
        self.factors = merged.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map { (atom: $0.key, power: $0.value) }
    }

    public init(_ atom: Atom, _ power: Int = 1) { self.init(factors: [(atom, power)]) }

    public static func * (l: Monomial, r: Monomial) -> Monomial { Monomial(factors: l.factors + r.factors) }
    public var inverse: Monomial { Monomial(factors: factors.map { ($0.atom, -$0.power) }) }
    /// Sum of the powers: used to order terms when printing (highest first).
    public var degree: Int { factors.reduce(0) { $0 + $1.power } }
    public var text: String { factors.map { $0.atom.text + ($0.power == 1 ? "" : "^\($0.power)") }.joined(separator: "*") }

    public static func == (l: Monomial, r: Monomial) -> Bool {
        l.factors.count == r.factors.count && zip(l.factors, r.factors).allSatisfy { $0.atom == $1.atom && $0.power == $1.power }
    }
    public func hash(into h: inout Hasher) { for f in factors { h.combine(f.atom); h.combine(f.power) } }
}

/// The canonical form: a sum of coefficient × monomial with no zero coefficients.
public struct Polynomial: Equatable, Sendable, CustomStringConvertible {
    public var terms: [Monomial: Rational]

    public init(terms: [Monomial: Rational] = [:]) { self.terms = terms.filter { !$0.value.isZero } }
    public init(_ c: Rational, _ m: Monomial = .one) { self.init(terms: [m: c]) }

    public static let zero = Polynomial()
    public var isZero: Bool { terms.isEmpty }
    public var isConstant: Bool { terms.keys.allSatisfy { $0.factors.isEmpty } }

    public static func + (l: Polynomial, r: Polynomial) -> Polynomial {
        var t = l.terms
        for (m, c) in r.terms { t[m] = (t[m] ?? .zero) + c }
        return Polynomial(terms: t)
    }
    public static prefix func - (x: Polynomial) -> Polynomial { Polynomial(terms: x.terms.mapValues { -$0 }) }
    public static func - (l: Polynomial, r: Polynomial) -> Polynomial { l + (-r) }
    public static func * (l: Polynomial, r: Polynomial) -> Polynomial {
        var t: [Monomial: Rational] = [:]
        for (m1, c1) in l.terms { for (m2, c2) in r.terms { t[m1 * m2] = (t[m1 * m2] ?? .zero) + c1 * c2 } }
        return Polynomial(terms: t)
    }

    /// Division by a single term; anything else has no canonical form here.
    public func divided(by d: Polynomial) throws -> Polynomial {
        guard d.terms.count == 1, let (m, c) = d.terms.first else {
            throw SymbolicError("can only divide by a single term, not \(d)")
        }
        return self * Polynomial(Rational.one / c, m.inverse)
    }

    public func power(_ n: Int) throws -> Polynomial {
        if n < 0 { return try Polynomial(.one).divided(by: power(-n)) }
        var out = Polynomial(.one)
        for _ in 0..<n { out = out * self }
        return out
    }

    /// d/dv, by the product rule over each term's factors.
    public func derivative(_ v: String) -> Polynomial {
        var out = Polynomial.zero
        for (m, c) in terms {
            for (i, f) in m.factors.enumerated() where f.atom.dependsOn(v) {
                var rest = m.factors
                rest[i].power -= 1
                let inner: Polynomial   // d(atom)/dv
                switch f.atom {
                case .variable: inner = Polynomial(.one)
                case .function(let name, let k, _):
                    switch name {
                    case "sin": inner = Polynomial(Rational(k), Monomial(.function("cos", k, v)))
                    case "cos": inner = Polynomial(Rational(-k), Monomial(.function("sin", k, v)))
                    case "exp": inner = Polynomial(Rational(k), Monomial(.function("exp", k, v)))
                    default: inner = Polynomial(.one, Monomial(.variable(v), -1))   // log(k·v)' = 1/v
                    }
                }
                out = out + Polynomial(c * Rational(f.power), Monomial(factors: rest)) * inner
            }
        }
        return out
    }

    /// ∫ dv without a constant, term by term. Supported terms have at most one factor that depends on v,
    /// and that factor is v^n, sin(k·v), cos(k·v) or exp(k·v).
    public func integral(_ v: String) throws -> Polynomial {
        var out = Polynomial.zero
        for (m, c) in terms {
            let dependent = m.factors.filter { $0.atom.dependsOn(v) }
            let rest = Monomial(factors: m.factors.filter { !$0.atom.dependsOn(v) })
            guard dependent.count <= 1 else { throw SymbolicError("no rule to integrate \(m.text)") }
            guard let f = dependent.first else {
                out = out + Polynomial(c, rest * Monomial(.variable(v))); continue
            }
            switch (f.atom, f.power) {
            case (.variable, -1):
                out = out + Polynomial(c, rest * Monomial(.function("log", 1, v)))
            case (.variable, let n):
                out = out + Polynomial(c / Rational(n + 1), rest * Monomial(.variable(v), n + 1))
            case (.function("sin", let k, _), 1):
                out = out + Polynomial(-c / Rational(k), rest * Monomial(.function("cos", k, v)))
            case (.function("cos", let k, _), 1):
                out = out + Polynomial(c / Rational(k), rest * Monomial(.function("sin", k, v)))
            case (.function("exp", let k, _), 1):
                out = out + Polynomial(c / Rational(k), rest * Monomial(.function("exp", k, v)))
            default:
                throw SymbolicError("no rule to integrate \(m.text)")
            }
        }
        return out
    }

    /// Numeric value with the variables bound as given.
    public func evaluate(_ env: [String: Double]) -> Double {
        var sum = 0.0
        for (m, c) in terms {
            var p = c.value
            for f in m.factors {
                let x: Double
                switch f.atom {
                case .variable(let v): x = env[v] ?? .nan
                case .function(let name, let k, let v):
                    let arg = Double(k) * (env[v] ?? .nan)
                    switch name {
                    case "sin": x = sin(arg)
                    case "cos": x = cos(arg)
                    case "exp": x = exp(arg)
                    default: x = log(arg)
                    }
                }
                p *= pow(x, Double(f.power))
            }
            sum += p
        }
        return sum
    }

    /// Terms in printing order: highest degree first, then by text.
    public var orderedTerms: [(Monomial, Rational)] {
        terms.sorted { l, r in
            l.key.degree != r.key.degree ? l.key.degree > r.key.degree : l.key.text < r.key.text
        }.map { ($0.key, $0.value) }
    }

    /// SymPy-parsable text, e.g. `x^2 - 3/2*x + 2*sin(x)/x`.
    public var description: String {
        if terms.isEmpty { return "0" }
        var out = ""
        for (i, (m, c)) in orderedTerms.enumerated() {
            let negative = c < .zero
            out += i == 0 ? (negative ? "-" : "") : (negative ? " - " : " + ")
            let mag = c.magnitude
            let up = m.factors.filter { $0.power > 0 }
            let down = m.factors.filter { $0.power < 0 }.map { (atom: $0.atom, power: -$0.power) }
            var numerator = up.isEmpty ? "" : Monomial(factors: up).text
            if mag != .one || numerator.isEmpty { numerator = numerator.isEmpty ? mag.description : "\(mag)*" + numerator }
            out += numerator
            if !down.isEmpty {
                let d = Monomial(factors: down)
                out += d.factors.count == 1 ? "/" + d.text : "/(" + d.text + ")"
            }
        }
        return out
    }
}

/// An expression tree as generated, before simplification.
public indirect enum Expr: Sendable {
    case number(Int)
    case variable(String)
    /// A function of its argument; the argument must simplify to k·variable with k a positive integer.
    case function(String, Expr)
    case add(Expr, Expr), sub(Expr, Expr), mul(Expr, Expr), div(Expr, Expr)
    case pow(Expr, Int)

    /// The canonical form (this is the simplifier).
    public func simplified() throws -> Polynomial {
        switch self {
        case .number(let n): return Polynomial(Rational(n))
        case .variable(let v): return Polynomial(.one, Monomial(.variable(v)))
        case .function(let name, let arg):
            let a = try arg.simplified()
            guard a.terms.count == 1, let (m, c) = a.terms.first, c.den == 1, c.num > 0,
                  m.factors.count == 1, case .variable(let v) = m.factors[0].atom, m.factors[0].power == 1 else {
                throw SymbolicError("\(name) is only supported of k*variable, not of \(a)")
            }
            return Polynomial(.one, Monomial(.function(name, c.num, v)))
        case .add(let l, let r): return try l.simplified() + r.simplified()
        case .sub(let l, let r): return try l.simplified() - r.simplified()
        case .mul(let l, let r): return try l.simplified() * r.simplified()
        case .div(let l, let r): return try l.simplified().divided(by: r.simplified())
        case .pow(let b, let n): return try b.simplified().power(n)
        }
    }
}
