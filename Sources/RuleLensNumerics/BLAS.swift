import CBLAS

/// Thin, row-major wrappers over OpenBLAS. Every matmul in RuleLens goes through here.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none, transposed
        var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// C[m,n] = alpha * op(A)[m,k] · op(B)[k,n] + beta * C[m,n], all row-major.
    ///
    /// `lda`, `ldb`, `ldc` default to the tight row strides of the stored (untransposed) matrices:
    /// A is stored [m,k] (or [k,m] when transposed), B is stored [k,n] (or [n,k] when transposed).
    public static func sgemm(_ transA: Transpose, _ transB: Transpose,
                             m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             _ a: UnsafePointer<Float>, lda: Int? = nil,
                             _ b: UnsafePointer<Float>, ldb: Int? = nil,
                             beta: Float = 0,
                             _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas,
                    blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// y = alpha * x + y over `n` elements.
    public static func saxpy(n: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(blasint(n), alpha, x, 1, y, 1)
    }

    /// Dot product of two length-`n` vectors.
    public static func sdot(n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(n), x, 1, y, 1)
    }

    /// Number of threads OpenBLAS uses.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// The CPU kernel family OpenBLAS selected (e.g. "SkylakeX", "Haswell").
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
