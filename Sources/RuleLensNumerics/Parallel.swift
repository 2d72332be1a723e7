import Foundation

/// Data-parallel loops over the machine's cores.
public enum Parallel {
    /// Number of worker threads RuleLens's own loops use (BLAS threads are set separately).
    /// Defaults to the active processor count.
    nonisolated(unsafe) public static var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Sets RuleLens's loop threads and OpenBLAS's threads together; 0 (or less) means every core.
    public static func configure(threads n: Int) {
        let count = n > 0 ? n : ProcessInfo.processInfo.activeProcessorCount
        threads = count
        BLAS.threads = count
    }

    /// Runs `body(chunkStart, chunkEnd)` over `0..<count` split into contiguous chunks, one per thread.
    /// Each index is visited exactly once; chunk boundaries depend only on `count` and `threads`,
    /// so results that are reduced per chunk are deterministic for a given thread count.
    @inlinable
    public static func forRanges(_ count: Int, minPerThread: Int = 1, _ body: (Int, Int) -> Void) {
        let workers = min(threads, max(1, count / max(1, minPerThread)))
        if workers <= 1 || count <= 1 {
            if count > 0 { body(0, count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = count * w / workers
            let end = count * (w + 1) / workers
            if start < end { body(start, end) }
        }
    }
}
