import Foundation
import RuleLensJobs
import RuleLensNumerics

// Swift side of `make bench`. `rulelens-bench NAME [args]` runs one benchmark and prints one JSON
// object per measurement on stdout; the Python scripts in Benchmarks/ run the reference
// implementation on the same data in the same run and print the side-by-side ratios.
BLASEnvironment.ensureCoreTypeOrReexec()

/// Each benchmark area adds its entry point here (one file per area beside this one).
let benchmarks: [String: ([String]) throws -> Void] = [
    "sgemm": SgemmBench.run,
    "train": TrainBench.run,
    "pca": AnalysisBench.pca,
    "silhouette": AnalysisBench.silhouette,
    "probe": AnalysisBench.probe,
    "dump": DumpBench.run,
    "generate": GenerateBench.run,
    "vae": VAEBench.run,
]

let args = Array(CommandLine.arguments.dropFirst())
guard let name = args.first, let bench = benchmarks[name] else {
    FileHandle.standardError.write(Data("usage: rulelens-bench \(benchmarks.keys.sorted().joined(separator: "|")) [args]\n".utf8))
    exit(2)
}
do {
    try bench(Array(args.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}
