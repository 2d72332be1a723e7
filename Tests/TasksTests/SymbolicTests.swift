import XCTest
@testable import RuleLensTasks
import RuleLensNumerics

/// Numeric checks of the symbolic engine (SymPy checks it symbolically in Tests/Python/test_tasks_sympy.py).
final class SymbolicTests: XCTestCase {
    let points: [[String: Double]] = [["x": 0.7, "y": 1.3], ["x": 1.9, "y": -0.4], ["x": 2.6, "y": 0.9]]

    func close(_ a: Double, _ b: Double, _ tol: Double = 1e-5) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

    func testSimplifierAgreesWithTheTreeNumerically() throws {
        var rng = SeededRNG(seed: 7)
        var n = 0
        while n < 300 {
            let tree = MathDerivation.randomTree(depth: 3, rng: &rng)
            guard let p = try? tree.simplified() else { continue }
            n += 1
            for env in points {
                XCTAssertTrue(close(p.evaluate(env), evaluate(tree, env)), "\(p)")
            }
        }
    }

    func testDerivativeMatchesFiniteDifferences() throws {
        var rng = SeededRNG(seed: 8)
        for _ in 0..<300 {
            let p = MathDerivation.randomExpression(rng: &rng)
            for v in ["x", "y"] {
                let d = p.derivative(v)
                for env in points {
                    let h = 1e-5
                    var up = env, down = env
                    up[v]! += h; down[v]! -= h
                    let fd = (p.evaluate(up) - p.evaluate(down)) / (2 * h)
                    XCTAssertTrue(close(d.evaluate(env), fd, 1e-4), "d/d\(v) \(p) = \(d)")
                }
            }
        }
    }

    func testIntegralDifferentiatesBack() throws {
        var rng = SeededRNG(seed: 9)
        var n = 0
        while n < 200 {
            let p = MathDerivation.randomExpression(rng: &rng)
            guard let i = try? p.integral("x") else { continue }
            n += 1
            XCTAssertEqual(i.derivative("x"), p, "∫ \(p) dx = \(i)")
        }
        XCTAssertThrowsError(try Polynomial(.one, Monomial(factors: [(.variable("x"), 1), (.function("sin", 1, "x"), 1)])).integral("x"))
    }

    func testPrintingAndArithmetic() throws {
        let x = Expr.variable("x")
        let e = try Expr.add(.pow(.add(x, .number(1)), 2), .mul(.number(-3), x)).simplified()   // (x+1)^2 - 3x
        XCTAssertEqual(e.description, "x^2 - x + 1")
        let q = try Expr.div(.add(.pow(x, 3), .mul(.number(2), x)), .mul(.number(2), .pow(x, 2))).simplified()
        XCTAssertEqual(q.description, "1/2*x + 1/x")
        let f = try Expr.mul(.function("sin", .mul(.number(2), x)), .pow(x, 2)).simplified()
        XCTAssertEqual(f.derivative("x").description, "2*x^2*cos(2*x) + 2*x*sin(2*x)")
        XCTAssertThrowsError(try Expr.function("sin", .pow(x, 2)).simplified())
        XCTAssertThrowsError(try Expr.div(x, .add(x, .number(1))).simplified())
    }

    func testGeneratedStepsUseEveryOperator() throws {
        var rng = SeededRNG(seed: 3)
        let steps = try MathDerivation.generate(count: 120, rng: &rng)
        XCTAssertEqual(steps.count, 120)
        XCTAssertEqual(Set(steps.map { $0.rule! }), Set(MathDerivation.operators))
        for s in steps { XCTAssertEqual(s.ruleId, MathDerivation.operators.firstIndex(of: s.rule!)) }
    }

    /// Direct evaluation of the unsimplified tree.
    func evaluate(_ e: Expr, _ env: [String: Double]) -> Double {
        switch e {
        case .number(let n): return Double(n)
        case .variable(let v): return env[v]!
        case .function(let f, let a):
            let x = evaluate(a, env)
            return f == "sin" ? sin(x) : f == "cos" ? cos(x) : f == "exp" ? exp(x) : log(x)
        case .add(let l, let r): return evaluate(l, env) + evaluate(r, env)
        case .sub(let l, let r): return evaluate(l, env) - evaluate(r, env)
        case .mul(let l, let r): return evaluate(l, env) * evaluate(r, env)
        case .div(let l, let r): return evaluate(l, env) / evaluate(r, env)
        case .pow(let b, let n): return pow(evaluate(b, env), Double(n))
        }
    }
}
