/// Reads expressions back from the text `Polynomial.description` and the math-derivation prompts print
/// (`x^2 - 3/2*x + 2*sin(2*x)/x`, `(x + 1)`, `-3*y`): numbers, x and y, sin/cos/exp/log of an argument, + − * / ^ with
/// integer exponents, parentheses, unary minus. `Expr.parse(p.description).simplified() == p` for every polynomial.
extension Expr {
    /// The expression in `text`, or a `SymbolicError` naming where it stops making sense.
    public static func parse(_ text: String) throws -> Expr {
        var parser = ExprParser(Array(text.unicodeScalars))
        let e = try parser.sum()
        parser.skipSpaces()
        guard parser.atEnd else { throw SymbolicError("unexpected '\(parser.rest)' in \(text)") }
        return e
    }
}

/// Recursive descent: sum := product (± product)*; product := unary ((*|/) unary)*; unary := − unary | power;
/// power := atom (^ integer)?; atom := number | variable | function(sum) | (sum). (So `-x^2` is −(x²), as printed.)
struct ExprParser {
    let s: [Unicode.Scalar]
    var i = 0
    init(_ s: [Unicode.Scalar]) { self.s = s }

    var atEnd: Bool { i >= s.count }
    var rest: String { String(String.UnicodeScalarView(s[i...])) }
    mutating func skipSpaces() { while i < s.count && s[i] == " " { i += 1 } }
    mutating func peek() -> Unicode.Scalar? { skipSpaces(); return atEnd ? nil : s[i] }

    mutating func sum() throws -> Expr {
        var e = try product()
        while let c = peek(), c == "+" || c == "-" {
            i += 1
            let r = try product()
            e = c == "+" ? .add(e, r) : .sub(e, r)
        }
        return e
    }

    mutating func product() throws -> Expr {
        var e = try unary()
        while let c = peek(), c == "*" || c == "/" {
            i += 1
            let r = try unary()
            e = c == "*" ? .mul(e, r) : .div(e, r)
        }
        return e
    }

    mutating func power() throws -> Expr {
        let base = try atom()
        guard peek() == "^" else { return base }
        i += 1
        guard let n = integer() else { throw SymbolicError("expected an integer exponent at '\(rest)'") }
        return .pow(base, n)
    }

    mutating func unary() throws -> Expr {
        if peek() == "-" {
            i += 1
            return .sub(.number(0), try unary())
        }
        return try power()
    }

    mutating func integer() -> Int? {
        skipSpaces()
        var digits = ""
        while i < s.count, ("0"..."9").contains(s[i]) { digits.unicodeScalars.append(s[i]); i += 1 }
        return Int(digits)
    }

    mutating func atom() throws -> Expr {
        guard let c = peek() else { throw SymbolicError("the expression ends too early") }
        if ("0"..."9").contains(c) { return .number(integer()!) }
        if c == "(" {
            i += 1
            let e = try sum()
            guard peek() == ")" else { throw SymbolicError("expected ')' at '\(rest)'") }
            i += 1
            return e
        }
        var name = ""
        while i < s.count, ("a"..."z").contains(s[i]) { name.unicodeScalars.append(s[i]); i += 1 }
        switch name {
        case "x", "y": return .variable(name)
        case "sin", "cos", "exp", "log":
            guard peek() == "(" else { throw SymbolicError("expected '(' after \(name)") }
            i += 1
            let arg = try sum()
            guard peek() == ")" else { throw SymbolicError("expected ')' at '\(rest)'") }
            i += 1
            return .function(name, arg)
        default:
            throw SymbolicError("unexpected '\(name.isEmpty ? String(c) : name)' in the expression")
        }
    }
}
