import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// `--threads N` of the commands that are not yet verbs: 0 (or absent) = all cores; negative numbers are refused.
func configureThreads(_ threads: Int?) throws {
    guard let threads else { return }
    guard threads >= 0 else {
        throw RuleLensError("--threads is \(threads), but it must be 0 or positive", fix: "pass --threads 0 (all cores) or a positive number")
    }
    Parallel.configure(threads: threads)
}
