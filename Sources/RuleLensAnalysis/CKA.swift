import RuleLensNumerics

extension Analysis {
    /// Linear centred kernel alignment between two representations of the same n examples, X [n, dx] and
    /// Y [n, dy] (Kornblith et al. 2019): ‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F) with column-centred Xᶜ, Yᶜ.
    /// In [0, 1]; 1 for X vs X; invariant to orthogonal transforms and isotropic scaling of either side.
    /// Uses the feature-space products when n is large and the n × n Gram matrices when features dominate.
    /// A representation with zero variance has no defined CKA: an error.
    public static func linearCKA(_ x: FloatMatrix, _ y: FloatMatrix, nameX: String = "X", nameY: String = "Y") throws -> Double {
        precondition(x.rows == y.rows, "CKA: the two sites have different example counts (\(x.rows), \(y.rows))")
        try requireFinite(x, nameX); try requireFinite(y, nameY)
        guard x.rows >= 2 else { throw RuleLensError("CKA needs at least 2 examples, got \(x.rows)", fix: "dump more examples") }
        let xc = centred(x), yc = centred(y)
        let n = x.rows, dx = x.cols, dy = y.cols
        let featureCost = dx * dy + dx * dx + dy * dy, gramCost = n * n * 3
        let cross: Double, selfX: Double, selfY: Double
        if featureCost <= gramCost {
            cross = frobeniusSquared(xc, yc)          // ‖Yᵀ X‖²
            selfX = frobeniusSquared(xc, xc); selfY = frobeniusSquared(yc, yc)
        } else {
            let kx = gram(xc), ky = gram(yc)          // ⟨Kx, Ky⟩ = ‖Yᵀ X‖²
            var c = 0.0, sx = 0.0, sy = 0.0
            for i in 0..<(n * n) { let a = Double(kx.ptr[i]), b = Double(ky.ptr[i]); c += a * b; sx += a * a; sy += b * b }
            cross = c; selfX = sx; selfY = sy
        }
        guard selfX > 0 else { throw zeroVariance(nameX) }
        guard selfY > 0 else { throw zeroVariance(nameY) }
        return cross / (selfX.squareRoot() * selfY.squareRoot())
    }

    /// CKA between every pair of the given representations (symmetric, ones on the diagonal).
    public static func ckaMatrix(_ sites: [FloatMatrix], names: [String]) throws -> [[Double]] {
        let k = sites.count
        var out = [[Double]](repeating: [Double](repeating: 1, count: k), count: k)
        for i in 0..<k { for j in (i + 1)..<max(k, i + 1) {
            let v = try linearCKA(sites[i], sites[j], nameX: names[i], nameY: names[j])
            out[i][j] = v; out[j][i] = v
        } }
        return out
    }

    static func zeroVariance(_ name: String) -> RuleLensError {
        RuleLensError("\(name): every example has the same activation (zero variance), so CKA is undefined",
                      fix: "choose a site whose activations vary across examples")
    }

    static func centred(_ x: FloatMatrix) -> FloatMatrix {
        let n = x.rows, d = x.cols
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x.ptr[i * d + j]) } }
        let out = x.copy()
        for j in 0..<d { mean[j] /= Double(n) }
        for i in 0..<n { for j in 0..<d { out.ptr[i * d + j] = Float(Double(out.ptr[i * d + j]) - mean[j]) } }
        return out
    }

    /// ‖Bᵀ A‖²_F for A [n, da], B [n, db].
    static func frobeniusSquared(_ a: FloatMatrix, _ b: FloatMatrix) -> Double {
        let prod = FloatBuffer(count: b.cols * a.cols)
        BLAS.sgemm(.transposed, .none, m: b.cols, n: a.cols, k: a.rows, b.ptr, a.ptr, prod.ptr)
        var s = 0.0
        for i in 0..<prod.count { let v = Double(prod.ptr[i]); s += v * v }
        return s
    }

    /// X Xᵀ [n, n].
    static func gram(_ x: FloatMatrix) -> FloatBuffer {
        let g = FloatBuffer(count: x.rows * x.rows)
        BLAS.sgemm(.none, .transposed, m: x.rows, n: x.rows, k: x.cols, x.ptr, x.ptr, g.ptr)
        return g
    }
}
