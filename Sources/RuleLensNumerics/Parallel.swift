import Foundation

/// Data-parallel loops over the machine's cores.
///
/// Work runs on RuleLens's own `WorkerPool` (persistent threads that spin briefly, then park), split into a few
/// chunks per thread that any participant claims. The calling thread always takes part, so when the machine is
/// loaded and a worker is descheduled the caller simply takes that worker's chunks instead of waiting for it at
/// a barrier: two threads are never slower than one because one of them is not running.
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

    /// Chunks per participating thread: enough that a stalled thread's share is small and can be taken over,
    /// few enough that each claim (one atomic compare-and-swap) is negligible.
    public static let chunksPerThread = 4

    /// Runs `body(chunkStart, chunkEnd)` over `0..<count` split into contiguous chunks.
    /// Each index is visited exactly once; chunk boundaries depend only on `count` and `threads` (never on which
    /// thread runs a chunk, or when), so results that are reduced per chunk are deterministic for a given thread count.
    /// Fewer than `minPerThread` indices per thread run on the calling thread alone.
    public static func forRanges(_ count: Int, minPerThread: Int = 1, _ body: (Int, Int) -> Void) {
        let workers = min(threads, max(1, count / max(1, minPerThread)))
        if workers <= 1 || count <= 1 {
            if count > 0 { body(0, count) }
            return
        }
        let chunks = min(count, workers * chunksPerThread)
        forEach(chunks: chunks, threads: workers) { c in body(count * c / chunks, count * (c + 1) / chunks) }
    }

    /// Runs `body(i)` once for every i in `0..<chunks`, on at most `threads` threads (the caller included), each
    /// chunk claimed by whichever participant is free. Nested or concurrent calls run serially on their own thread.
    public static func forEach(chunks: Int, threads: Int, _ body: (Int) -> Void) {
        if chunks <= 0 { return }
        if threads <= 1 || chunks == 1 || !WorkerPool.shared.run(chunks: chunks, helpers: threads - 1, body) {
            for c in 0..<chunks { body(c) }
        }
    }
}
