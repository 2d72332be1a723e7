import CBLAS
import Dispatch

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

    /// `sgemm` with C split into one block per `Parallel.threads` thread, each block one single-threaded OpenBLAS
    /// call on RuleLens's worker pool. Used for the model's mid-sized products (a few hundred MFLOP or less), where OpenBLAS's own threads
    /// cost more in hand-offs and spin-waiting (`sched_yield`) than they gain. C is split along its longer side at
    /// multiples of 16 (the kernels' register-block width). The result is deterministic for a given kernel and
    /// thread count; whether it equals one whole call bit for bit depends on the kernel (SkylakeX: yes; Haswell:
    /// no), so callers may rely only on float-rounding closeness across thread counts or kernels. Small products
    /// run as a single call.
    public static func sgemmSplit(_ transA: Transpose, _ transB: Transpose,
                                  m: Int, n: Int, k: Int,
                                  alpha: Float = 1,
                                  _ a: UnsafePointer<Float>, lda: Int? = nil,
                                  _ b: UnsafePointer<Float>, ldb: Int? = nil,
                                  beta: Float = 0,
                                  _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        let extent = max(m, n)
        let workers = min(Parallel.threads, extent / 32)
        guard workers > 1, m * n * k >= 1 << 18 else {
            withThreads(1) { sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb, beta: beta, c, ldc: ldc) }
            return
        }
        let splitRows = m >= n
        // One block per thread, claimed by whichever thread is free: a worker that is not running when the product
        // starts has its block taken over instead of waited for. (More, narrower blocks would take over more of a
        // stalled worker's share, but OpenBLAS then takes other code paths for some block shapes, and the bits of C
        // would depend on the thread count; BLASSplitTests pins them to one whole call.)
        let blocks = workers
        withThreads(1) {
            Parallel.forEach(chunks: blocks, threads: workers) { w in
                // Block boundaries rounded to multiples of 16; the last block takes the remainder.
                let start = min(extent, (extent * w / blocks + 8) / 16 * 16)
                let end = w == blocks - 1 ? extent : min(extent, (extent * (w + 1) / blocks + 8) / 16 * 16)
                guard start < end else { return }
                if splitRows {
                    // rows start..<end of C and of op(A)
                    let aBlock = transA == .none ? a + start * lda : a + start
                    sgemm(transA, transB, m: end - start, n: n, k: k, alpha: alpha, aBlock, lda: lda, b, ldb: ldb,
                          beta: beta, c + start * ldc, ldc: ldc)
                } else {
                    // columns start..<end of C and of op(B)
                    let bBlock = transB == .none ? b + start : b + start * ldb
                    sgemm(transA, transB, m: m, n: end - start, k: k, alpha: alpha, a, lda: lda, bBlock, ldb: ldb,
                          beta: beta, c + start, ldc: ldc)
                }
            }
        }
    }

    /// Runs `body` with OpenBLAS limited to `n` threads, then restores the previous count. Call it from one
    /// thread (OpenBLAS's thread count is process-wide); nested calls are fine.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let previous = threads
        if previous == n { return try body() }
        threads = n
        defer { threads = previous }
        return try body()
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
