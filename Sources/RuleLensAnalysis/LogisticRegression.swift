import Foundation
import RuleLensNumerics

/// Multinomial logistic regression with an L2 penalty — the linear probe. Same objective as scikit-learn's
/// `LogisticRegression(C=C, solver="lbfgs")`:  C · Σᵢ CE(xᵢ) + ½‖W‖² (intercept not penalised), with softmax over
/// all k classes for k ≥ 3 and the single-vector logistic model for k = 2. Minimised (divided by C·n, as
/// scikit-learn does) by L-BFGS with a strong-Wolfe line search in Double, logits and gradients through BLAS (dgemm).
public struct LogisticRegression: Sendable {
    /// Weights [d, m] row-major (m = k, or 1 for two classes) and intercepts [m].
    public let weights: [Double]
    public let intercepts: [Double]
    public let featureCount: Int
    public let classCount: Int
    /// L-BFGS iterations used and whether the gradient tolerance was reached.
    public let iterations: Int
    public let converged: Bool
    /// max |∇| of the scaled objective (mean CE + ‖W‖²/(2Cn)) at the returned weights: scikit-learn's `gtol` measure.
    public let gradientNorm: Double
    /// Objective evaluations (each one forward and one backward pass over the data).
    public let evaluations: Int

    var outputs: Int { classCount == 2 ? 1 : classCount }

    /// The parameter vector L-BFGS works on: weights [d, m] row-major, then intercepts [m].
    public var parameters: [Double] { weights + intercepts }

    /// Fits on X [n, d] with class ids in 0..<classCount (every class should occur). `initial` (the `parameters` of
    /// an earlier fit with the same d and classes, e.g. the previous fold or regularisation strength) warm-starts
    /// the optimiser; the optimum is the same, it is only reached in fewer iterations.
    public static func fit(_ x: FloatMatrix, _ y: [Int], classCount: Int, C: Double = 1, maxIterations: Int = 1000,
                           tolerance: Double = 1e-6, initial: [Double]? = nil) -> LogisticRegression {
        let n = x.rows, d = x.cols, m = classCount == 2 ? 1 : classCount
        let xd = UnsafeMutablePointer<Double>.allocate(capacity: max(1, n * d))
        defer { xd.deallocate() }
        for i in 0..<(n * d) { xd[i] = Double(x.ptr[i]) }
        let params = (d + 1) * m // weights row-major [d, m], then intercepts [m]
        let logits = UnsafeMutablePointer<Double>.allocate(capacity: max(1, n * m))
        defer { logits.deallocate() }
        let scale = 1 / Double(n)            // objective / (C n): mean CE + ‖W‖² / (2 C n)
        let l2 = 1 / (C * Double(n))

        func objective(_ theta: UnsafePointer<Double>, _ grad: UnsafeMutablePointer<Double>) -> Double {
            var loss = 0.0
            let w = theta, b = theta + d * m
            BLAS.dgemm(.none, .none, m: n, n: m, k: d, xd, w, logits)
            // logits become dLogits in place, row by row.
            for i in 0..<n {
                let z = logits + i * m
                for c in 0..<m { z[c] += b[c] }
                if m == 1 {
                    // binary: p = σ(z), CE = log(1 + e^z) − y z
                    let zi = z[0], yi = Double(y[i])
                    loss += (zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi))) - yi * zi
                    let p = zi >= 0 ? 1 / (1 + exp(-zi)) : exp(zi) / (1 + exp(zi))
                    z[0] = (p - yi) * scale
                } else {
                    var mx = -Double.infinity
                    for c in 0..<m { mx = max(mx, z[c]) }
                    let zy = z[y[i]]
                    var s = 0.0
                    for c in 0..<m { let e = exp(z[c] - mx); z[c] = e; s += e }
                    loss += log(s) + mx - zy
                    let f = scale / s
                    for c in 0..<m { z[c] *= f }
                    z[y[i]] -= scale
                }
            }
            // dW = Xᵀ dLogits + l2 W ; db = Σᵢ dLogits
            BLAS.dgemm(.transposed, .none, m: d, n: m, k: n, xd, logits, grad)
            for c in 0..<m { grad[d * m + c] = 0 }
            for i in 0..<n { let g = logits + i * m; for c in 0..<m { grad[d * m + c] += g[c] } }
            var penalty = 0.0
            for p in 0..<(d * m) { penalty += theta[p] * theta[p]; grad[p] += l2 * theta[p] }
            return loss * scale + 0.5 * l2 * penalty
        }

        var start = [Double](repeating: 0, count: params)
        if let initial, initial.count == params { start = initial }
        let r = LBFGS.minimize(start: start, maxIterations: maxIterations, tolerance: tolerance, objective)
        return LogisticRegression(weights: Array(r.x[0..<(d * m)]), intercepts: Array(r.x[(d * m)...]),
                                  featureCount: d, classCount: classCount, iterations: r.iterations, converged: r.converged,
                                  gradientNorm: r.gradientNorm, evaluations: r.evaluations)
    }

    /// Most probable class of each row of X [n, d].
    public func predict(_ x: FloatMatrix) -> [Int] {
        let n = x.rows, d = featureCount, m = outputs
        precondition(x.cols == d, "predict: \(x.cols) features, probe was fit on \(d)")
        return (0..<n).map { i in
            var bestC = 0, bestZ = -Double.infinity
            for c in 0..<m {
                var z = intercepts[c]
                for j in 0..<d { z += Double(x.ptr[i * d + j]) * weights[j * m + c] }
                if m == 1 { return z > 0 ? 1 : 0 }
                if z > bestZ { bestZ = z; bestC = c }
            }
            return bestC
        }
    }
}

/// Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, algorithms 7.4, 3.5 and 3.6), for the
/// smooth convex objectives here. The Wolfe curvature condition keeps every update's sᵀy > 0, so the quasi-Newton
/// model stays good and the unit step is accepted almost always.
enum LBFGS {
    struct Result {
        let x: [Double]
        let iterations: Int
        let converged: Bool
        let gradientNorm: Double
        let evaluations: Int
    }

    /// Minimises `f` (value; gradient written into its second argument) from `start`. Stops when max|∇f| ≤
    /// `tolerance` (scikit-learn's lbfgs `gtol` criterion), or when a step no longer changes f by more than
    /// 64·ε relative (its `ftol`), or after `maxIterations`.
    static func minimize(start: [Double], memory: Int = 10, maxIterations: Int, tolerance: Double,
                         _ f: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Double) -> Result {
        let count = start.count
        var x = start
        var g = [Double](repeating: 0, count: count)
        var evaluations = 1
        var fx = x.withUnsafeBufferPointer { xp in g.withUnsafeMutableBufferPointer { f(xp.baseAddress!, $0.baseAddress!) } }
        // History ring of (s, y, ρ).
        var sHist = [[Double]](), yHist = [[Double]](), rho = [Double]()
        var direction = [Double](repeating: 0, count: count)
        var alphas = [Double](repeating: 0, count: memory)
        var xTrial = x, gTrial = g
        func maxAbs(_ v: [Double]) -> Double { var m = 0.0; for e in v { m = max(m, abs(e)) }; return m }
        func dot(_ a: [Double], _ b: [Double]) -> Double { var s = 0.0; for i in 0..<a.count { s += a[i] * b[i] }; return s }
        // φ(α) = f(x + α·direction), φ′(α) = ∇f · direction; the last evaluation is kept in xTrial / gTrial.
        func phi(_ alpha: Double) -> (Double, Double) {
            for j in 0..<count { xTrial[j] = x[j] + alpha * direction[j] }
            evaluations += 1
            let value = xTrial.withUnsafeBufferPointer { xp in gTrial.withUnsafeMutableBufferPointer { f(xp.baseAddress!, $0.baseAddress!) } }
            return (value, dot(gTrial, direction))
        }

        var iteration = 0
        var gNorm = maxAbs(g)
        while iteration < maxIterations && gNorm > tolerance {
            // Two-loop recursion: direction = −H g.
            direction = g
            for i in stride(from: sHist.count - 1, through: 0, by: -1) {
                alphas[i] = rho[i] * dot(sHist[i], direction)
                let yi = yHist[i], a = alphas[i]
                for j in 0..<count { direction[j] -= a * yi[j] }
            }
            if let s = sHist.last, let y = yHist.last {
                let gamma = dot(s, y) / dot(y, y)
                for j in 0..<count { direction[j] *= gamma }
            }
            for i in 0..<sHist.count {
                let beta = rho[i] * dot(yHist[i], direction)
                let si = sHist[i], c = alphas[i] - beta
                for j in 0..<count { direction[j] += c * si[j] }
            }
            for j in 0..<count { direction[j] = -direction[j] }
            var slope = dot(direction, g)
            if !(slope < 0) {
                // Not a descent direction (numerical trouble): restart from steepest descent.
                sHist = []; yHist = []; rho = []
                for j in 0..<count { direction[j] = -g[j] }
                slope = -dot(g, g)
            }
            // First step of a fresh model: scaled so the first trial moves by at most 1 in the largest coordinate.
            let firstStep = sHist.isEmpty ? min(1, 1 / max(maxAbs(direction), 1e-300)) : 1
            guard let (_, fNew) = wolfeSearch(f0: fx, slope0: slope, initial: firstStep, phi) else { break }
            // xTrial / gTrial hold the accepted point.
            var s = [Double](repeating: 0, count: count), y = [Double](repeating: 0, count: count)
            for j in 0..<count { s[j] = xTrial[j] - x[j]; y[j] = gTrial[j] - g[j] }
            let sy = dot(s, y)
            if sy > 1e-12 * max(1, dot(y, y)) {
                if sHist.count == memory { sHist.removeFirst(); yHist.removeFirst(); rho.removeFirst() }
                sHist.append(s); yHist.append(y); rho.append(1 / sy)
            }
            let fOld = fx
            swap(&x, &xTrial); swap(&g, &gTrial)
            fx = fNew
            iteration += 1
            gNorm = maxAbs(g)
            if (fOld - fx) <= 64 * Double.ulpOfOne * max(abs(fOld), abs(fx), 1) { break }
        }
        return Result(x: x, iterations: iteration, converged: gNorm <= tolerance, gradientNorm: gNorm, evaluations: evaluations)
    }

    /// Step length satisfying the strong Wolfe conditions (c₁ = 1e-4, c₂ = 0.9) along a descent direction, or nil
    /// when none is found within 40 evaluations. Returns (step, φ(step)); the caller's `phi` has just been
    /// evaluated at the returned step (its trial point is the accepted one).
    static func wolfeSearch(f0: Double, slope0: Double, initial: Double, _ phi: (Double) -> (Double, Double)) -> (Double, Double)? {
        let c1 = 1e-4, c2 = 0.9
        var evals = 0
        var aPrev = 0.0, fPrev = f0, dPrev = slope0
        var a = initial
        // Last evaluated step, so the accepted point is the one in phi's trial buffers.
        var lastEvaluated = -1.0
        func eval(_ t: Double) -> (Double, Double) { evals += 1; lastEvaluated = t; return phi(t) }

        func zoom(_ lo0: Double, _ fLo0: Double, _ dLo0: Double, _ hi0: Double, _ fHi0: Double, _ dHi0: Double) -> (Double, Double)? {
            var (lo, fLo, dLo, hi, fHi, dHi) = (lo0, fLo0, dLo0, hi0, fHi0, dHi0)
            while evals < 40 {
                // Cubic interpolation of φ between lo and hi, safeguarded into the middle 80% of the interval.
                var t = cubicMinimizer(lo, fLo, dLo, hi, fHi, dHi)
                let lower = min(lo, hi), upper = max(lo, hi), width = upper - lower
                if !t.isFinite || t < lower + 0.1 * width || t > upper - 0.1 * width { t = 0.5 * (lo + hi) }
                if width <= 1e-16 * max(1, upper) { break }
                let (ft, dt) = eval(t)
                if ft > f0 + c1 * t * slope0 || ft >= fLo {
                    hi = t; fHi = ft; dHi = dt
                } else {
                    if abs(dt) <= -c2 * slope0 { return (t, ft) }
                    if dt * (hi - lo) >= 0 { hi = lo; fHi = fLo; dHi = dLo }
                    lo = t; fLo = ft; dLo = dt
                }
            }
            // No strong-Wolfe point, but lo satisfies sufficient decrease: accept it if it is an improvement.
            if lo > 0 && fLo < f0 {
                if lastEvaluated != lo { _ = eval(lo) }
                return (lo, fLo)
            }
            return nil
        }

        while evals < 40 {
            let (fa, da) = eval(a)
            if !fa.isFinite {
                // Overshot into overflow: shrink towards the last good step.
                a = aPrev + 0.5 * (a - aPrev)
                continue
            }
            if fa > f0 + c1 * a * slope0 || (evals > 1 && fa >= fPrev) {
                return zoom(aPrev, fPrev, dPrev, a, fa, da)
            }
            if abs(da) <= -c2 * slope0 { return (a, fa) }
            if da >= 0 { return zoom(a, fa, da, aPrev, fPrev, dPrev) }
            aPrev = a; fPrev = fa; dPrev = da
            a *= 2
        }
        return nil
    }

    /// Minimiser of the cubic through (a, fa, da) and (b, fb, db) (Nocedal & Wright eq. 3.59); NaN when it has none.
    static func cubicMinimizer(_ a: Double, _ fa: Double, _ da: Double, _ b: Double, _ fb: Double, _ db: Double) -> Double {
        let d1 = da + db - 3 * (fa - fb) / (a - b)
        let disc = d1 * d1 - da * db
        guard disc >= 0 else { return .nan }
        let d2 = (b > a ? 1.0 : -1.0) * disc.squareRoot()
        return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)
    }
}
