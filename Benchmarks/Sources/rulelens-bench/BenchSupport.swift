import Foundation
import RuleLensJobs
import RuleLensNumerics

/// Wall-clock seconds of the best of `repeats` runs of `body` (after one warm-up run).
func bestTime(repeats: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return best
}

/// Prints one measurement as a JSON line.
func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(stdout)
}

/// Peak single-precision matmul throughput on this machine: square sgemm at the given size.
enum SgemmBench {
    static func run(_ args: [String]) throws {
        let n = args.first.flatMap(Int.init) ?? 1024
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        var rng = SeededRNG(seed: 1)
        for i in 0..<(n * n) { a[i] = rng.normal(); b[i] = rng.normal() }
        let seconds = bestTime(repeats: 5) {
            BLAS.sgemm(.none, .none, m: n, n: n, k: n, a.ptr, b.ptr, c.ptr)
        }
        emit(["bench": "sgemm", "n": n, "threads": BLAS.threads, "core": BLAS.coreName,
              "seconds": seconds, "gflops": 2.0 * Double(n * n * n) / seconds / 1e9])
    }
}
