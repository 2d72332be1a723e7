import Foundation
import RuleLensNumerics

/// Multinomial logistic regression with an L2 penalty — the linear probe. Same objective as scikit-learn's
/// `LogisticRegression(C=C, solver="lbfgs")`:  C · Σᵢ CE(xᵢ) + ½‖W‖² (intercept not penalised), with softmax over
/// all k classes for k ≥ 3 and the single-vector logistic model for k = 2. Minimised by L-BFGS in Double,
/// logits and gradients through BLAS (dgemm).
public struct LogisticRegression: Sendable {
    /// Weights [d, m] row-major (m = k, or 1 for two classes) and intercepts [m].
    public let weights: [Double]
    public let intercepts: [Double]
    public let featureCount: Int
    public let classCount: Int
    /// L-BFGS iterations used and whether the gradient tolerance was reached.
    public let iterations: Int
    public let converged: Bool

    var outputs: Int { classCount == 2 ? 1 : classCount }

    /// Fits on X [n, d] with class ids in 0..<classCount (every class should occur).
    public static func fit(_ x: FloatMatrix, _ y: [Int], classCount: Int, C: Double = 1, maxIterations: Int = 1000,
                           tolerance: Double = 1e-6) -> LogisticRegression {
        let n = x.rows, d = x.cols, m = classCount == 2 ? 1 : classCount
        let xd = (0..<(n * d)).map { Double(x.ptr[$0]) }
        let params = (d + 1) * m // weights row-major [d, m], then intercepts [m]
        let logits = UnsafeMutablePointer<Double>.allocate(capacity: n * m)
        defer { logits.deallocate() }
        let dLogits = UnsafeMutablePointer<Double>.allocate(capacity: n * m)
        defer { dLogits.deallocate() }
        let scale = 1 / Double(n)            // objective / (C n): mean CE + ‖W‖² / (2 C n)
        let l2 = 1 / (C * Double(n))

        func objective(_ theta: [Double], _ grad: inout [Double]) -> Double {
            var loss = 0.0
            theta.withUnsafeBufferPointer { tp in
                xd.withUnsafeBufferPointer { xp in
                    let w = tp.baseAddress!, b = tp.baseAddress! + d * m
                    BLAS.dgemm(.none, .none, m: n, n: m, k: d, xp.baseAddress!, w, logits)
                    for i in 0..<n {
                        let z = logits + i * m, g = dLogits + i * m
                        for c in 0..<m { z[c] += b[c] }
                        if m == 1 {
                            // binary: p = σ(z), CE = log(1 + e^z) − y z
                            let zi = z[0], yi = Double(y[i])
                            loss += (zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi))) - yi * zi
                            let p = zi >= 0 ? 1 / (1 + exp(-zi)) : exp(zi) / (1 + exp(zi))
                            g[0] = (p - yi) * scale
                        } else {
                            var mx = -Double.infinity
                            for c in 0..<m { mx = max(mx, z[c]) }
                            var s = 0.0
                            for c in 0..<m { let e = exp(z[c] - mx); g[c] = e; s += e }
                            loss += log(s) + mx - z[y[i]]
                            for c in 0..<m { g[c] = g[c] / s * scale }
                            g[y[i]] -= scale
                        }
                    }
                    grad.withUnsafeMutableBufferPointer { gp in
                        // dW = Xᵀ dLogits + l2 W ; db = Σᵢ dLogits
                        BLAS.dgemm(.transposed, .none, m: d, n: m, k: n, xp.baseAddress!, dLogits, gp.baseAddress!)
                        for c in 0..<m {
                            var s = 0.0
                            for i in 0..<n { s += dLogits[i * m + c] }
                            gp[d * m + c] = s
                        }
                    }
                }
            }
            var penalty = 0.0
            for p in 0..<(d * m) { penalty += theta[p] * theta[p]; grad[p] += l2 * theta[p] }
            return loss * scale + 0.5 * l2 * penalty
        }

        let (theta, iterations, converged) = LBFGS.minimize(count: params, maxIterations: maxIterations,
                                                            tolerance: tolerance, objective)
        return LogisticRegression(weights: Array(theta[0..<(d * m)]), intercepts: Array(theta[(d * m)...]),
                                  featureCount: d, classCount: classCount, iterations: iterations, converged: converged)
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

/// Limited-memory BFGS with a backtracking (Armijo) line search, for the smooth convex objectives here.
enum LBFGS {
    /// Minimises `f` from 0. Stops when max|∇f| ≤ tolerance (scikit-learn's lbfgs `gtol` criterion) or when
    /// the objective stops decreasing. Returns the argument, iterations used and whether the tolerance was met.
    static func minimize(count: Int, memory: Int = 10, maxIterations: Int, tolerance: Double,
                         _ f: ([Double], inout [Double]) -> Double) -> ([Double], Int, Bool) {
        var x = [Double](repeating: 0, count: count)
        var g = [Double](repeating: 0, count: count)
        var fx = f(x, &g)
        var sList: [[Double]] = [], yList: [[Double]] = [], rhoList: [Double] = []
        var gNew = g
        func dot(_ a: [Double], _ b: [Double]) -> Double { var s = 0.0; for i in 0..<a.count { s += a[i] * b[i] }; return s }
        for iteration in 0..<maxIterations {
            if g.reduce(0, { max($0, abs($1)) }) <= tolerance { return (x, iteration, true) }
            // Two-loop recursion: direction = −H g.
            var q = g
            var alphas = [Double](repeating: 0, count: sList.count)
            for i in stride(from: sList.count - 1, through: 0, by: -1) {
                alphas[i] = rhoList[i] * dot(sList[i], q)
                for j in 0..<count { q[j] -= alphas[i] * yList[i][j] }
            }
            if let s = sList.last, let y = yList.last {
                let gamma = dot(s, y) / dot(y, y)
                for j in 0..<count { q[j] *= gamma }
            } else {
                let norm = dot(g, g).squareRoot()
                for j in 0..<count { q[j] /= max(norm, 1) }
            }
            for i in 0..<sList.count {
                let beta = rhoList[i] * dot(yList[i], q)
                for j in 0..<count { q[j] += sList[i][j] * (alphas[i] - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(direction, g)
            if slope >= 0 { direction = g.map { -$0 }; slope = -dot(g, g); sList = []; yList = []; rhoList = [] }
            var step = 1.0, xNew = x, fNew = fx, accepted = false
            for _ in 0..<60 {
                for j in 0..<count { xNew[j] = x[j] + step * direction[j] }
                fNew = f(xNew, &gNew)
                if fNew <= fx + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { return (x, iteration, false) }
            let s = (0..<count).map { xNew[$0] - x[$0] }, y = (0..<count).map { gNew[$0] - g[$0] }
            let sy = dot(s, y)
            if sy > 1e-12 {
                sList.append(s); yList.append(y); rhoList.append(1 / sy)
                if sList.count > memory { sList.removeFirst(); yList.removeFirst(); rhoList.removeFirst() }
            }
            let decrease = fx - fNew
            x = xNew; g = gNew; fx = fNew
            if decrease <= 1e-16 * max(abs(fx), 1) { return (x, iteration + 1, g.reduce(0, { max($0, abs($1)) }) <= tolerance) }
        }
        return (x, maxIterations, g.reduce(0, { max($0, abs($1)) }) <= tolerance)
    }
}
