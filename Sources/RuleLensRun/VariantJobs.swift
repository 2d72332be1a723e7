import Foundation
import RuleLensJobs
import RuleLensNumerics

/// `rulelens run --jobs N`: a sweep's variants in up to N child processes at once (`rulelens run SPEC --variant K`).
///
/// Small models barely use a second thread (their GEMMs are too small to split well), so on a few cores a sweep of
/// them finishes sooner as one single-threaded process per variant than as one process with every thread. Each child
/// runs its variant's steps with the usual caching and stamps; the parent then reads the stamps back and writes the
/// results and report as a sequential run would. Children die with the parent (PR_SET_PDEATHSIG), so a killed run
/// leaves no process behind still writing into a step folder, and a rerun continues from the stamps.
struct VariantJobs {
    let plan: RunPlan
    let options: RunOptions
    let executable: String
    let outDir: String
    let log: (String) -> Void

    /// Runs every variant; returns the step folders the children brought up to date (ran, not found cached).
    func run() throws -> Set<String> {
        try checkIndependent()
        let steps = plan.variants.flatMap(\.steps)
        let selected = steps.filter { options.only == nil || $0.spec.id == options.only }
        let upToDateBefore = Set(steps.filter { !(options.force && selected.map(\.dir).contains($0.dir)) && isUpToDate($0) }.map(\.dir))
        let pending = plan.variants.indices.filter { plan.variants[$0].steps.contains { !upToDateBefore.contains($0.dir) } }
        guard !pending.isEmpty else { return [] }

        let cores = ProcessInfo.processInfo.activeProcessorCount
        let jobs = min(options.jobs, pending.count)
        let threadsEach = max(1, ((options.threads ?? 0) > 0 ? options.threads! : cores) / jobs)  // 0: all cores
        log("--jobs \(jobs): \(pending.count) variant\(pending.count == 1 ? "" : "s") to run, \(jobs) at a time, \(threadsEach) thread\(threadsEach == 1 ? "" : "s") each")

        let state = JobState()
        let slots = DispatchSemaphore(value: jobs)
        let group = DispatchGroup()
        let started = ProgressLine.now()
        for index in pending {
            slots.wait()
            if state.failed { slots.signal(); break }  // no new variant after a failure; running ones finish
            let variant = plan.variants[index].variant
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments(variant: index, threads: threadsEach)
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            // Variant ids can be long (every swept variable); lines carry the variant's number, named once here.
            let label = "v\(index + 1)/\(plan.variants.count)"
            log("[\(label)] = \(variant.id): started")
            let relay = LineRelay(prefix: "[\(label)] ", log: log, state: state)
            pipe.fileHandleForReading.readabilityHandler = { handle in relay.take(handle.availableData) }
            group.enter()
            process.terminationHandler = { p in
                pipe.fileHandleForReading.readabilityHandler = nil
                relay.take(pipe.fileHandleForReading.readDataToEndOfFile())
                relay.flush()
                let finished = state.finish(variant: "\(label) (\(variant.id))", status: p.terminationStatus, tail: relay.tail)
                if p.terminationStatus == 0 {
                    let elapsed = ProgressLine.now() - started
                    let left = pending.count - finished
                    self.log("variants done: \(finished)/\(pending.count)" + (left > 0
                        ? " · ETA \(ProgressLine.duration(elapsed / Double(finished) * Double(left)))" : ""))
                }
                slots.signal()
                group.leave()
            }
            do { try process.run() } catch {
                state.finish(variant: "\(label) (\(variant.id))", status: -1, tail: ["could not start \(executable): \(error)"])
                slots.signal(); group.leave()
            }
        }
        group.wait()
        if let failure = state.failures.first {
            throw RuleLensError("variant \(failure.variant) failed (exit \(failure.status))"
                                + (failure.tail.isEmpty ? "" : ":\n  " + failure.tail.joined(separator: "\n  ")),
                                fix: "see its lines above (prefixed with its number); steps that finished are kept, so a rerun continues")
        }
        return Set(steps.map(\.dir)).subtracting(upToDateBefore)
    }

    func arguments(variant index: Int, threads: Int) -> [String] {
        var args = ["run", options.specPath, "--out", outDir, "--variant", String(index), "--threads", String(threads)]
        if options.quick { args.append("--quick") }
        if options.force { args.append("--force") }
        if let only = options.only { args += ["--only", only] }
        if !options.progress { args.append("--quiet") }
        return args + options.limits.arguments
    }

    func isUpToDate(_ ps: RunPlan.PlannedStep) -> Bool {
        guard let fingerprint = try? StepCache.fingerprint(kind: ps.type.kind, options: ps.options, inputs: ps.inputs, limits: options.limits) else { return false }
        return StepCache.validStamp(in: ps.dir, fingerprint: fingerprint) != nil
    }

    /// Variants run at once must not read each other's folders (possible through `${run}`).
    func checkIndependent() throws {
        for pv in plan.variants {
            for ps in pv.steps {
                for input in ps.inputs {
                    if let other = plan.variants.first(where: { $0.dir != pv.dir && !$0.variant.folder.isEmpty
                                                                && (input == $0.dir || input.hasPrefix($0.dir + "/")) }) {
                        throw RuleLensError("--jobs: step \(ps.spec.id) of variant \(pv.variant.id) reads \(input), in variant \(other.variant.id)'s folder, "
                                            + "so the variants cannot run at once",
                                            fix: "run this spec without --jobs")
                    }
                }
            }
        }
    }
}

/// What the children reported, shared between their termination handlers.
final class JobState: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private(set) var failures: [(variant: String, status: Int32, tail: [String])] = []
    var failed: Bool { lock.lock(); defer { lock.unlock() }; return !failures.isEmpty }

    /// Records one child's end; returns how many have ended successfully so far.
    @discardableResult
    func finish(variant: String, status: Int32, tail: [String]) -> Int {
        lock.lock(); defer { lock.unlock() }
        if status == 0 { done += 1 } else { failures.append((variant, status, tail)) }
        return done
    }

    /// One lock for every child's output, so lines from two children never interleave mid-line.
    func write(_ body: () -> Void) { lock.lock(); defer { lock.unlock() }; body() }
}

/// Forwards a child's output line by line with its variant's prefix, keeping the last lines for an error message.
final class LineRelay: @unchecked Sendable {
    let prefix: String
    let log: (String) -> Void
    let state: JobState
    private let lock = NSLock()  // the pipe's handler and the termination handler run on different threads
    private var pending = Data()
    private var lastLines: [String] = []
    var tail: [String] { lock.lock(); defer { lock.unlock() }; return lastLines }

    init(prefix: String, log: @escaping (String) -> Void, state: JobState) { self.prefix = prefix; self.log = log; self.state = state }

    func take(_ data: Data) {
        guard !data.isEmpty else { return }
        lock.lock(); defer { lock.unlock() }
        pending.append(data)
        // Progress lines end in "\r" on a terminal and "\n" otherwise; either ends a line here.
        while let end = pending.firstIndex(where: { $0 == 10 || $0 == 13 }) {
            emit(pending[pending.startIndex..<end])
            pending.removeSubrange(pending.startIndex...end)
        }
    }

    func flush() {
        lock.lock(); defer { lock.unlock() }
        if !pending.isEmpty { emit(pending[...]); pending.removeAll() }
    }

    private func emit(_ bytes: Data) {
        let line = String(decoding: bytes, as: UTF8.self)
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        lastLines = Array((lastLines + [line]).suffix(8))
        state.write { log(prefix + line) }
    }
}
