import CBLAS
import CLAPACKE

/// LAPACKE's `lapack_int` (a C macro Swift cannot import): 32-bit on Debian's liblapacke.
typealias LapackInt = Int32

/// A dense row-major `rows × cols` matrix of `Float`s over a `FloatBuffer` (element (i, j) at `i * cols + j`).
///
/// A reference type underneath: copying the struct shares the buffer. Use `copy()` for an independent matrix.
public struct FloatMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let buffer: FloatBuffer

    /// A zero matrix.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "matrix dimensions must be non-negative")
        self.rows = rows; self.cols = cols
        buffer = FloatBuffer(count: rows * cols)
    }

    /// A matrix over `values` in row-major order (`values.count == rows * cols`).
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "matrix needs rows*cols = \(rows * cols) values, got \(values.count)")
        self.rows = rows; self.cols = cols
        buffer = FloatBuffer(values)
    }

    /// Wraps an existing buffer holding at least `rows * cols` values.
    public init(rows: Int, cols: Int, buffer: FloatBuffer) {
        precondition(buffer.count >= rows * cols)
        self.rows = rows; self.cols = cols; self.buffer = buffer
    }

    public var ptr: UnsafeMutablePointer<Float> { buffer.ptr }
    public var count: Int { rows * cols }

    public subscript(i: Int, j: Int) -> Float {
        get { buffer.ptr[i * cols + j] }
        nonmutating set { buffer.ptr[i * cols + j] = newValue }
    }

    /// An independent copy.
    public func copy() -> FloatMatrix {
        let out = FloatMatrix(rows: rows, cols: cols)
        out.ptr.update(from: ptr, count: count)
        return out
    }

    /// The transpose, as a new matrix.
    public func transposed() -> FloatMatrix {
        let out = FloatMatrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { out.ptr[j * rows + i] = ptr[i * cols + j] } }
        return out
    }

    /// The rows at `indices`, in that order, as a new matrix.
    public func selectingRows(_ indices: [Int]) -> FloatMatrix {
        let out = FloatMatrix(rows: indices.count, cols: cols)
        for (r, i) in indices.enumerated() { (out.ptr + r * cols).update(from: ptr + i * cols, count: cols) }
        return out
    }

    /// The values as a row-major array.
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }

    /// Number of non-finite (NaN or ±inf) entries.
    public func nonFiniteCount() -> Int { RuleLensNumerics.nonFiniteCount(ptr, count) }
}

extension BLAS {
    /// Double-precision C[m,n] = alpha * op(A) · op(B) + beta * C, row-major, tight strides by default.
    public static func dgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Double = 1,
                             _ a: UnsafePointer<Double>, lda: Int? = nil, _ b: UnsafePointer<Double>, ldb: Int? = nil,
                             beta: Double = 0, _ c: UnsafeMutablePointer<Double>, ldc: Int? = nil) {
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        cblas_dgemm(CblasRowMajor, transA == .none ? CblasNoTrans : CblasTrans, transB == .none ? CblasNoTrans : CblasTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Upper triangle of C[n,n] = alpha * Aᵀ·A + beta * C for a row-major A[k,n] (the Gram/covariance kernel,
    /// half the work of sgemm). The lower triangle of C is left untouched.
    public static func ssyrkTransposed(n: Int, k: Int, alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int? = nil,
                                       beta: Float = 0, _ c: UnsafeMutablePointer<Float>) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(k), alpha, a, blasint(lda ?? n),
                    beta, c, blasint(n))
    }
}

/// LAPACK (through LAPACKE, row-major) for the analyses: SVD, symmetric eigendecomposition, solves, least squares.
///
/// Every routine checks its input for NaN/inf first and turns LAPACK's `info != 0` into a `RuleLensError`
/// that says what failed (no convergence, a singular or indefinite matrix) and what to do about it.
public enum LinearAlgebra {
    /// Thin SVD A = U · diag(S) · Vt of an `m × n` matrix, k = min(m, n): U [m,k], S [k] descending, Vt [k,n].
    public struct SVD { public let u: FloatMatrix; public let s: [Float]; public let vt: FloatMatrix }

    /// Thin SVD by divide and conquer (sgesdd). `a` is not modified.
    public static func svd(_ a: FloatMatrix) throws -> SVD {
        try checkFinite(a, "SVD")
        let m = a.rows, n = a.cols, k = min(m, n)
        guard k > 0 else { throw RuleLensError("SVD of an empty \(m)×\(n) matrix", fix: "pass a matrix with at least one row and one column") }
        let work = a.copy() // sgesdd destroys its input
        let u = FloatMatrix(rows: m, cols: k), vt = FloatMatrix(rows: k, cols: n)
        var s = [Float](repeating: 0, count: k)
        let info = s.withUnsafeMutableBufferPointer { sp in
            LAPACKE_sgesdd(LAPACK_ROW_MAJOR, ascii("S"), LapackInt(m), LapackInt(n), work.ptr, LapackInt(n),
                           sp.baseAddress, u.ptr, LapackInt(k), vt.ptr, LapackInt(n))
        }
        try check(info, "sgesdd (SVD)", positive: "the SVD did not converge (\(info) superdiagonals failed)")
        return SVD(u: u, s: s, vt: vt)
    }

    /// Eigendecomposition of a symmetric `n × n` matrix (ssyevd, upper triangle read): eigenvalues in
    /// descending order and the matching unit eigenvectors as the columns of `vectors` (A v = λ v).
    public static func symmetricEigen(_ a: FloatMatrix) throws -> (values: [Float], vectors: FloatMatrix) {
        try checkFinite(a, "eigendecomposition")
        precondition(a.rows == a.cols, "symmetricEigen needs a square matrix")
        let n = a.rows
        let work = a.copy()
        var w = [Float](repeating: 0, count: n)
        let info = w.withUnsafeMutableBufferPointer {
            LAPACKE_ssyevd(LAPACK_ROW_MAJOR, ascii("V"), ascii("U"), LapackInt(n), work.ptr, LapackInt(n), $0.baseAddress)
        }
        try check(info, "ssyevd (symmetric eigendecomposition)", positive: "the eigensolver did not converge")
        // LAPACK returns ascending order; reverse the values and the eigenvector columns.
        let vectors = FloatMatrix(rows: n, cols: n)
        for i in 0..<n { for j in 0..<n { vectors.ptr[i * n + j] = work.ptr[i * n + (n - 1 - j)] } }
        return (Array(w.reversed()), vectors)
    }

    /// Double-precision eigendecomposition (dsyevd) of a symmetric row-major `n × n` array: eigenvalues
    /// descending, eigenvectors as the columns of the returned row-major array.
    public static func symmetricEigen(_ a: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
        precondition(a.count == n * n, "symmetricEigen needs n*n values")
        guard a.allSatisfy({ $0.isFinite }) else {
            throw RuleLensError("eigendecomposition input contains NaN or infinite values", fix: "remove or impute non-finite values in the data")
        }
        var work = a
        var w = [Double](repeating: 0, count: n)
        let info = work.withUnsafeMutableBufferPointer { wp in
            w.withUnsafeMutableBufferPointer {
                LAPACKE_dsyevd(LAPACK_ROW_MAJOR, ascii("V"), ascii("U"), LapackInt(n), wp.baseAddress, LapackInt(n), $0.baseAddress)
            }
        }
        try check(info, "dsyevd (symmetric eigendecomposition)", positive: "the eigensolver did not converge")
        var vectors = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { vectors[i * n + j] = work[i * n + (n - 1 - j)] } }
        return (Array(w.reversed()), vectors)
    }

    /// The `top` largest eigenpairs of a symmetric row-major `n × n` Double array (dsyevr, MRRR, upper triangle
    /// read): eigenvalues descending, eigenvectors as the columns of the returned row-major [n, top] array.
    /// Cheaper than the full decomposition when top ≪ n (PCA keeps a few components of a wide site).
    public static func symmetricEigen(_ a: [Double], n: Int, top: Int) throws -> (values: [Double], vectors: [Double]) {
        precondition(a.count == n * n && top >= 1 && top <= n, "symmetricEigen(top:) needs n*n values and 1 ≤ top ≤ n")
        guard a.allSatisfy({ $0.isFinite }) else {
            throw RuleLensError("eigendecomposition input contains NaN or infinite values", fix: "remove or impute non-finite values in the data")
        }
        var work = a
        var w = [Double](repeating: 0, count: n)
        var z = [Double](repeating: 0, count: n * top)
        var support = [LapackInt](repeating: 0, count: 2 * top)
        var found: LapackInt = 0
        let info = work.withUnsafeMutableBufferPointer { wp in
            w.withUnsafeMutableBufferPointer { vp in
                z.withUnsafeMutableBufferPointer { zp in
                    support.withUnsafeMutableBufferPointer { sp in
                        LAPACKE_dsyevr(LAPACK_ROW_MAJOR, ascii("V"), ascii("I"), ascii("U"), LapackInt(n), wp.baseAddress, LapackInt(n),
                                       0, 0, LapackInt(n - top + 1), LapackInt(n), 0, &found, vp.baseAddress, zp.baseAddress,
                                       LapackInt(top), sp.baseAddress)
                    }
                }
            }
        }
        try check(info, "dsyevr (symmetric eigendecomposition)", positive: "the eigensolver did not converge")
        let m = Int(found)
        // Ascending within the selected range: reverse to descending.
        var vectors = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { vectors[i * m + j] = z[i * top + (m - 1 - j)] } }
        return (Array(w[0..<m].reversed()), vectors)
    }

    /// Solves A X = B for square A [n,n] and B [n,nrhs] by LU with partial pivoting (sgesv).
    public static func solve(_ a: FloatMatrix, _ b: FloatMatrix) throws -> FloatMatrix {
        try checkFinite(a, "linear solve"); try checkFinite(b, "linear solve")
        precondition(a.rows == a.cols && b.rows == a.rows, "solve needs A [n,n] and B [n,nrhs]")
        let n = a.rows, lu = a.copy(), x = b.copy()
        var pivots = [LapackInt](repeating: 0, count: n)
        let info = pivots.withUnsafeMutableBufferPointer {
            LAPACKE_sgesv(LAPACK_ROW_MAJOR, LapackInt(n), LapackInt(b.cols), lu.ptr, LapackInt(n), $0.baseAddress,
                          x.ptr, LapackInt(b.cols))
        }
        try check(info, "sgesv (linear solve)", positive: "the matrix is singular (U[\(info),\(info)] is exactly zero)",
                  fix: "the system has no unique solution: use leastSquares, or add a small ridge to the diagonal")
        return x
    }

    /// Solves A X = B for symmetric positive definite A [n,n] by Cholesky (sposv).
    public static func solveSymmetricPositiveDefinite(_ a: FloatMatrix, _ b: FloatMatrix) throws -> FloatMatrix {
        try checkFinite(a, "Cholesky solve"); try checkFinite(b, "Cholesky solve")
        precondition(a.rows == a.cols && b.rows == a.rows, "solveSymmetricPositiveDefinite needs A [n,n] and B [n,nrhs]")
        let n = a.rows, chol = a.copy(), x = b.copy()
        let info = LAPACKE_sposv(LAPACK_ROW_MAJOR, ascii("U"), LapackInt(n), LapackInt(b.cols), chol.ptr, LapackInt(n),
                                 x.ptr, LapackInt(b.cols))
        try check(info, "sposv (Cholesky solve)", positive: "the matrix is not positive definite (leading minor \(info))",
                  fix: "add a ridge to the diagonal, or use solve() for indefinite matrices")
        return x
    }

    /// Least-squares solution of min ‖A X − B‖ for A [m,n] of full column rank, m ≥ n, B [m,nrhs] (sgels, QR).
    /// Returns X [n,nrhs].
    public static func leastSquares(_ a: FloatMatrix, _ b: FloatMatrix) throws -> FloatMatrix {
        try checkFinite(a, "least squares"); try checkFinite(b, "least squares")
        precondition(b.rows == a.rows, "leastSquares needs A [m,n] and B [m,nrhs]")
        let m = a.rows, n = a.cols, nrhs = b.cols
        guard m >= n else {
            throw RuleLensError("least squares with fewer rows (\(m)) than columns (\(n)) is underdetermined",
                                fix: "provide at least as many examples as features")
        }
        let qr = a.copy(), rhs = b.copy()
        let info = LAPACKE_sgels(LAPACK_ROW_MAJOR, ascii("N"), LapackInt(m), LapackInt(n), LapackInt(nrhs),
                                 qr.ptr, LapackInt(n), rhs.ptr, LapackInt(nrhs))
        try check(info, "sgels (least squares)", positive: "the matrix is rank deficient (R[\(info),\(info)] is zero)",
                  fix: "remove constant or duplicate columns, or add a ridge")
        let x = FloatMatrix(rows: n, cols: nrhs)
        x.ptr.update(from: rhs.ptr, count: n * nrhs) // the first n rows of rhs hold X
        return x
    }

    // MARK: - helpers

    static func ascii(_ s: Unicode.Scalar) -> CChar { CChar(UInt8(ascii: s)) }

    static func checkFinite(_ a: FloatMatrix, _ what: String) throws {
        let bad = a.nonFiniteCount()
        if bad > 0 {
            throw RuleLensError("\(what) input (\(a.rows)×\(a.cols)) contains \(bad) NaN or infinite values",
                                fix: "remove or impute the non-finite values before the analysis")
        }
    }

    static func check(_ info: LapackInt, _ routine: String, positive: @autoclosure () -> String,
                      fix: String = "check the input for degenerate values (constant columns, huge magnitudes)") throws {
        if info == 0 { return }
        if info < 0 {
            throw RuleLensError("LAPACK \(routine) rejected argument \(-info) (info = \(info))",
                                fix: "this is a RuleLens bug or a matrix too large for 32-bit LAPACK indices; please report it")
        }
        throw RuleLensError("LAPACK \(routine) failed: \(positive())", fix: fix)
    }
}
