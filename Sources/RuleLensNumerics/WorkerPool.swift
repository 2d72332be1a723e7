import Foundation
import Synchronization

/// RuleLens's thread pool: persistent workers that spin for a short while after each job (so the next job of a
/// training step starts without a wake-up) and then park on a condition variable (so an idle or loaded machine
/// gets its cores back). Jobs are split into chunks that participants claim with one compare-and-swap each; the
/// caller claims too, and only waits at the end for chunks that another thread has already started.
///
/// One job at a time: `run` returns false (the caller then runs the chunks itself) when the pool is already busy,
/// e.g. for a nested `Parallel` call from inside a chunk, or a second thread calling at the same time.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long a worker keeps spinning for the next job, and the caller for the last chunks, before parking.
    /// `RULELENS_SPIN_US` overrides it (0 parks at once).
    static let spinNanoseconds: UInt64 = {
        if let s = ProcessInfo.processInfo.environment["RULELENS_SPIN_US"], let us = UInt64(s) { return us * 1000 }
        return 50_000
    }()

    /// The current job in one word, so a claim is a single compare-and-swap that also checks the job is current:
    /// bits 0–15 the next unclaimed chunk, 16–31 the chunk count, 32–39 how many workers may join, 40–63 the job's
    /// generation (a stale worker's swap fails on the generation).
    private let ticket = Atomic<UInt64>(0)
    /// Chunks finished in the current job.
    private let done = Atomic<Int>(0)
    /// Whether a job is in progress (taken by `run`).
    private let busy = Atomic<Bool>(false)
    /// Workers parked on `workerCondition`, and whether the caller is parked on `callerCondition`.
    private let parkedWorkers = Atomic<Int>(0)
    private let callerParked = Atomic<Bool>(false)
    /// The current job's body, `(Int) -> Void`, valid while the job runs (published by the ticket's release store).
    nonisolated(unsafe) private var body: UnsafeRawPointer? = nil
    nonisolated(unsafe) private var workerCount = 0
    private let workerLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workerCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let callerLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let callerCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init() {
        pthread_mutex_init(workerLock, nil); pthread_cond_init(workerCondition, nil)
        pthread_mutex_init(callerLock, nil); pthread_cond_init(callerCondition, nil)
    }

    @inline(__always) private static func generation(_ t: UInt64) -> UInt64 { t >> 40 }
    @inline(__always) private static func allowed(_ t: UInt64) -> Int { Int((t >> 32) & 0xFF) }
    @inline(__always) private static func chunkCount(_ t: UInt64) -> Int { Int((t >> 16) & 0xFFFF) }
    @inline(__always) private static func next(_ t: UInt64) -> Int { Int(t & 0xFFFF) }

    @inline(__always) private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Runs `body(i)` for i in 0..<chunks on the caller and up to `helpers` workers. Returns false, having run
    /// nothing, when the pool is busy or the job does not fit the ticket (then the caller runs it alone).
    func run(chunks: Int, helpers: Int, _ body: (Int) -> Void) -> Bool {
        guard chunks < 0xFFFF, helpers >= 1 else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        let helpers = min(helpers, 255)
        while workerCount < helpers { spawnWorker(index: workerCount); workerCount += 1 }

        withoutActuallyEscaping(body) { escapable in
            var job = escapable
            withUnsafePointer(to: &job) { jobPointer in
                self.body = UnsafeRawPointer(jobPointer)
                done.store(0, ordering: .relaxed)
                let old = ticket.load(ordering: .relaxed)
                let gen = (Self.generation(old) + 1) & 0xFF_FFFF
                ticket.store(gen << 40 | UInt64(helpers) << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
                if parkedWorkers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(workerLock); pthread_cond_broadcast(workerCondition); pthread_mutex_unlock(workerLock)
                }
                claimAndRun(generation: gen)
                // Wait for chunks other threads are still running: spin briefly, then park until the last one ends.
                if done.load(ordering: .acquiring) < chunks {
                    let deadline = Self.now() + Self.spinNanoseconds
                    var spins = 0
                    while done.load(ordering: .acquiring) < chunks {
                        spins += 1
                        if spins & 63 == 0 && Self.now() > deadline {
                            pthread_mutex_lock(callerLock)
                            callerParked.store(true, ordering: .sequentiallyConsistent)
                            while done.load(ordering: .sequentiallyConsistent) < chunks { pthread_cond_wait(callerCondition, callerLock) }
                            callerParked.store(false, ordering: .relaxed)
                            pthread_mutex_unlock(callerLock)
                            break
                        }
                    }
                }
                self.body = nil
            }
        }
        return true
    }

    /// Claims chunks of job `generation` until none is left (or the job is no longer current) and runs them.
    private func claimAndRun(generation gen: UInt64) {
        var t = ticket.load(ordering: .acquiring)
        while Self.generation(t) == gen && Self.next(t) < Self.chunkCount(t) {
            let (exchanged, current) = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            if !exchanged { t = current; continue }
            Self.runChunk(body!, Self.next(t))
            let finished = done.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            if finished == Self.chunkCount(t) && callerParked.load(ordering: .sequentiallyConsistent) {
                pthread_mutex_lock(callerLock); pthread_cond_signal(callerCondition); pthread_mutex_unlock(callerLock)
            }
            t = ticket.load(ordering: .acquiring)
        }
    }

    /// Calls the job's body; not inlined, so any reference counting of the closure ends before the chunk is
    /// reported done (the caller's `withoutActuallyEscaping` checks nothing kept it).
    @inline(never)
    private static func runChunk(_ body: UnsafeRawPointer, _ chunk: Int) {
        body.assumingMemoryBound(to: ((Int) -> Void).self).pointee(chunk)
    }

    private func spawnWorker(index: Int) {
        let thread = Thread { [unowned self] in self.workerLoop(index: index) }
        thread.stackSize = 8 << 20
        thread.name = "rulelens-worker-\(index)"
        thread.start()
    }

    private func workerLoop(index: Int) {
        var seen = Self.generation(ticket.load(ordering: .acquiring))
        while true {
            // Wait for a new job: spin, then park.
            var t = ticket.load(ordering: .acquiring)
            if Self.generation(t) == seen {
                let deadline = Self.now() + Self.spinNanoseconds
                var spins = 0
                while Self.generation(t) == seen {
                    spins += 1
                    if spins & 63 == 0 && Self.now() > deadline {
                        pthread_mutex_lock(workerLock)
                        parkedWorkers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                        while Self.generation(ticket.load(ordering: .sequentiallyConsistent)) == seen {
                            pthread_cond_wait(workerCondition, workerLock)
                        }
                        parkedWorkers.wrappingSubtract(1, ordering: .relaxed)
                        pthread_mutex_unlock(workerLock)
                    }
                    t = ticket.load(ordering: .acquiring)
                }
            }
            seen = Self.generation(t)
            if index < Self.allowed(t) { claimAndRun(generation: seen) }
        }
    }
}
