// swift-tools-version:6.0
// RuleLens: an interpretability and probing workbench for transformers trained on rule-governed tasks.
import PackageDescription

// Language mode 5: the hot loops share raw buffers across DispatchQueue.concurrentPerform workers,
// which Swift 6's strict Sendable checking would reject without adding any safety here.
// Release builds on x86-64 Linux target Haswell's feature set (AVX2/FMA, = x86-64-v3; swiftc has no "x86-64-v3"
// name) so the elementwise loops (GELU, LayerNorm, AdamW, softmax) vectorise 8-wide.
#if arch(x86_64) && os(Linux)
let releaseFlags = ["-Ounchecked", "-target-cpu", "haswell"]
#else
let releaseFlags = ["-Ounchecked"]
#endif
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(releaseFlags, .when(configuration: .release))]

let package = Package(
    name: "RuleLens",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "rulelens", targets: ["rulelens"]),
        // For use as a dependency without MPI: the models, hooks, tokenizers and checkpoints (OpenBLAS and LAPACKE
        // only), and with them the activation store, analysis and interventions (adds HDF5).
        .library(name: "RuleLensModel", targets: ["RuleLensNumerics", "RuleLensTasks", "RuleLensModel"]),
        .library(name: "RuleLensAnalysis", targets: ["RuleLensStore", "RuleLensAnalysis", "RuleLensInterventions"]),
        // Everything (the jobs pull in MPI for data-parallel training and sharded dumps).
        .library(name: "RuleLensJobs", targets: ["RuleLensJobs"]),
        .library(name: "RuleLensVerbs", targets: ["RuleLensVerbs"]),
        .library(name: "RuleLensRun", targets: ["RuleLensRun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // YAML for declarative experiment specs (Probes/*.yaml); 6.x keeps node marks (line numbers) for errors.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries, located with pkg-config (Debian: libhdf5-dev, libopenblas-dev, liblapacke-dev).
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Open MPI (Debian: libopenmpi-dev, openmpi-bin): data-parallel training and sharded dumps under mpirun.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // Numerics: buffers, BLAS/LAPACK wrappers, seeded RNG, threading, errors. Everything else builds on it.
        .target(name: "RuleLensNumerics", dependencies: ["CBLAS", "CLAPACKE"], swiftSettings: v5),
        // Tasks: tokenizer, examples, JSONL, the reasoning-task generators, formats and splits.
        .target(name: "RuleLensTasks", dependencies: ["RuleLensNumerics"], resources: [], swiftSettings: v5),
        // Model: GPT-2 forward/backward, hooks, optimiser, checkpoints (safetensors, HF names).
        .target(name: "RuleLensModel", dependencies: ["RuleLensNumerics"], swiftSettings: v5),
        // Store: HDF5 wrapper and the activation store.
        // A signal guard for reads of damaged HDF5 files (a crash inside HDF5 becomes an error paragraph).
        .target(name: "CRuleLensGuard"),
        .target(name: "RuleLensStore", dependencies: ["CHDF5", "CDeflate", "CRuleLensGuard", "RuleLensNumerics"], swiftSettings: v5),
        // Distributed: ranks under mpirun (one rank without it), collectives, agreement checks, gradient reduction.
        .target(name: "RuleLensDistributed", dependencies: ["CMPI", "RuleLensNumerics"], swiftSettings: v5),
        // Report: SVG pictures (heatmaps, scatter plots, line charts).
        .target(name: "RuleLensReport", dependencies: [], swiftSettings: v5),
        // Analysis: PCA/SVD, separability, probes, CKA, gradient-kernel blocks.
        .target(name: "RuleLensAnalysis",
                dependencies: ["RuleLensNumerics", "RuleLensStore", "RuleLensModel", "RuleLensReport"],
                swiftSettings: v5),
        // Interventions: ablation (zero/mean/resample per layer and head), activation patching, logit lens and
        // direct logit attribution, bootstrap intervals — defined as TransformerLens defines them — and the q/k/v
        // retrieval measurement (attention mass on each target character's source keys under a prior added at a site).
        .target(name: "RuleLensInterventions",
                dependencies: ["RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensAnalysis"],
                swiftSettings: v5),
        // Studies: the studies' measures (PAPERS.md): accuracy over the operand plane, by carry and by digit count,
        // derived label columns (figure, mood, carry, digits), and the data side of trained rule priors.
        .target(name: "RuleLensStudies",
                dependencies: ["RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore", "RuleLensReport"],
                swiftSettings: v5),
        // Jobs: the library-level workflows the CLI calls (train, eval, dump, probe, ablate, patch, lens).
        .target(name: "RuleLensJobs",
                dependencies: ["RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore", "RuleLensAnalysis",
                               "RuleLensReport", "RuleLensInterventions", "RuleLensDistributed", "RuleLensStudies"],
                swiftSettings: v5),
        // Verbs: each verb declared once (arguments, result, run), from which the command line and spec steps are made.
        .target(name: "RuleLensVerbs",
                dependencies: ["RuleLensJobs", "RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore",
                               "RuleLensAnalysis", "RuleLensReport", "RuleLensInterventions", "RuleLensDistributed",
                               "RuleLensStudies", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: v5),
        // Run: declarative experiment specs (Probes/*.yaml): parsing, expressions, steps over the jobs, cache, report.
        // `rulelens run --jobs N`'s children die with their parent (prctl is variadic, so it is wrapped in C).
        .target(name: "CRuleLensProcess"),
        .target(name: "RuleLensRun",
                dependencies: ["RuleLensJobs", "RuleLensVerbs", "RuleLensNumerics", "RuleLensModel", "RuleLensStore",
                               "CRuleLensProcess", .product(name: "Yams", package: "Yams")],
                swiftSettings: v5),
        // The command-line tool: parses arguments and calls RuleLensJobs / RuleLensRun.
        .executableTarget(name: "rulelens",
                          dependencies: ["RuleLensJobs", "RuleLensVerbs", "RuleLensRun", "RuleLensDistributed",
                                         "RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore", "RuleLensStudies",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: v5),
        // Benchmarks (make bench): Swift side of the side-by-side comparisons.
        .executableTarget(name: "rulelens-bench",
                          dependencies: ["RuleLensJobs", "RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore",
                                         "RuleLensAnalysis"],
                          path: "Benchmarks/Sources/rulelens-bench", swiftSettings: v5),

        .testTarget(name: "NumericsTests", dependencies: ["RuleLensNumerics"], swiftSettings: v5),
        .testTarget(name: "TasksTests", dependencies: ["RuleLensTasks", "RuleLensNumerics"], swiftSettings: v5),
        .testTarget(name: "ModelTests", dependencies: ["RuleLensModel", "RuleLensNumerics"], swiftSettings: v5),
        .testTarget(name: "StoreTests", dependencies: ["RuleLensStore", "RuleLensJobs", "RuleLensNumerics", "RuleLensTasks", "RuleLensModel"], swiftSettings: v5),
        .testTarget(name: "AnalysisTests", dependencies: ["RuleLensAnalysis", "RuleLensNumerics", "RuleLensModel"], swiftSettings: v5),
        // The jobs (train, eval, dump, probe, retrieve, …) and the inputs they refuse.
        .testTarget(name: "JobsTests",
                    dependencies: ["RuleLensJobs", "RuleLensNumerics", "RuleLensTasks", "RuleLensModel", "RuleLensStore",
                                   "RuleLensAnalysis", "RuleLensInterventions"],
                    swiftSettings: v5),
        .testTarget(name: "InterventionsTests", dependencies: ["RuleLensInterventions", "RuleLensNumerics", "RuleLensModel"], swiftSettings: v5),
        .testTarget(name: "DistributedTests", dependencies: ["RuleLensDistributed"], swiftSettings: v5),
        .testTarget(name: "RunTests", dependencies: ["RuleLensRun", "RuleLensJobs", "RuleLensNumerics"], swiftSettings: v5),
    ]
)
