import ArgumentParser
import Foundation
import RuleLensDistributed
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// `dump`: record hook sites of a checkpoint on a data set into an HDF5 activation file (Data/ACTIVATIONS.md).
public enum DumpVerb: Verb {
    public static let commandPath = ["dump"]
    public static let abstract = "Record chosen hook sites of a model on a data set into an HDF5 activation file (acts.h5)."
    public static let discussion = """
        Each example runs as [bos] + prompt + target + [eos] (teacher-forced). Loads every family (gpt2, llama, qwen2, \
        and a language VAE's view: its latent and encoder sites). The layout (Data/ACTIVATIONS.md): /meta columns (id, \
        tokens, length, answer_pos, prompt, target, prediction, correct, …) and one float32 /acts/<hook name> dataset \
        per site. The file says complete=0 until the dump finishes.

        --out DIR writes DIR/acts.h5 (a spec step's ${ID} names it); --out FILE.h5 names the file itself.

        Examples:
          rulelens dump --checkpoint runs/add --data test.jsonl --hooks 'blocks.*.hook_resid_post' --out resid
          rulelens dump --checkpoint runs/add --task addition --split leave-square-out --hooks '*' --positions answer --out all.h5

        Under mpirun (mpirun -np N rulelens dump … --out OUT.h5), rank r writes its contiguous slice of the examples to \
        OUT.rank{r}.h5 and, once every shard is complete, rank 0 writes OUT.h5: virtual datasets over the shards that \
        every reader sees as one file (keep the shards beside it). --resume continues each shard.
        """
    public static let stepOutput = "acts.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, a Hugging Face gpt2/llama/qwen2 folder, or a `rulelens vae train` run).")
        public var checkpoint: InputPath
        @OptionGroup(title: "Examples (--data FILE|DIR, or a generated --task)")
        public var source: DataSourceOptions
        @Option(help: "Part of a generated data set (or of a `data generate` folder) to run: train, test or all (train then test).")
        public var part: DataPart = .test
        @Option(parsing: .unconditional, help: "Dump the first N examples of the part only.")
        public var limit: Int?
        @Option(help: "Hook names or glob patterns (TransformerLens names; '*' = every site): repeatable, or comma-separated.")
        public var hooks: [String] = []
        @Option(parsing: .unconditional, help: "Positions to keep: all, last (the <eos>), answer (last prompt position), or an index K (negative: from the end).")
        public var positions: String = "all"
        @Option(parsing: .unconditional, help: "Examples per forward pass.")
        public var batch: Int = 32
        @Option(help: "How activation chunks are stored: none, gzip (level 1, with shuffle) or gzip:LEVEL (1-9). Default: \(ChunkCompression.default).")
        public var compression: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("Deprecated spelling of --compression: a gzip level 0-9, 0 = none.", visibility: .hidden))
        public var gzip: Int?
        @Flag(help: "Continue an incomplete output file (same checkpoint, data, hooks and positions).")
        public var resume = false
        @Option(help: ArgumentHelp("Verification: also write each site's stored rows to DIR/<hook>.npy.", visibility: .hidden))
        public var exportNpy: OutputPath?
        @Option(help: "Folder to write acts.h5 into (created), or the HDF5 file itself (a path ending in .h5).")
        public var out: String
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        /// The hook patterns (comma-separated items split).
        public var patterns: [String] {
            hooks.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// The chunk storage chosen by --compression or --gzip.
        public func chunkCompression() throws -> ChunkCompression {
            if let gzip {
                guard (0...9).contains(gzip) else { throw RuleLensError("--gzip \(gzip) is outside 0…9", fix: "pass --compression none, gzip or gzip:LEVEL") }
                return gzip == 0 ? .none : .gzip(level: gzip)
            }
            if let compression { return try ChunkCompression(parsing: compression) }
            return .default
        }

        /// The HDF5 file --out names.
        public var file: String { out.hasSuffix(".h5") ? out : (out as NSString).appendingPathComponent("acts.h5") }

        public func validate() throws {
            if patterns.isEmpty { throw ValidationError("--hooks is empty; pass hook names or patterns, e.g. --hooks 'blocks.*.hook_resid_post'") }
            if !["all", "last", "answer"].contains(positions) && Int(positions) == nil {
                throw ValidationError("--positions \(positions) is not all, last, answer or an index; pass e.g. --positions answer or --positions -2")
            }
            if batch < 1 { throw ValidationError("--batch is \(batch); pass a positive number, e.g. --batch 32") }
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of examples (or leave it out for all)") }
            if gzip != nil && compression != nil { throw ValidationError("--gzip and --compression both given; pass only --compression (none, gzip or gzip:LEVEL)") }
            // The values of --compression / --gzip are read (ChunkCompression's own error and fix) in run, before any data.
            if resume && runtime.force { throw ValidationError("--force and --resume contradict each other; pass --resume to continue the file, or --force to start over") }
        }
    }

    public struct Result: Codable, Sendable {
        public var examples: Int
        /// Examples computed by this run (fewer than `examples` after --resume).
        public var examplesThisRun: Int
        public var sites: Int
        public var siteNames: [String]
        public var teacherForcedAccuracy: Double?
        /// Activation megabytes (uncompressed float32) produced this run.
        public var megabytes: Double
        enum CodingKeys: String, CodingKey {
            case examples, examplesThisRun = "examples_this_run", sites, siteNames = "site_names",
                 teacherForcedAccuracy = "teacher_forced_accuracy", megabytes
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(examples, forKey: .examples); try c.encode(examplesThisRun, forKey: .examplesThisRun)
            try c.encode(sites, forKey: .sites); try c.encode(siteNames, forKey: .siteNames)
            try c.encode(teacherForcedAccuracy, forKey: .teacherForcedAccuracy); try c.encode(megabytes, forKey: .megabytes)
        }
    }

    /// --quick: the first 100 examples.
    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 100) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let file = a.file
        try OutputLock.checkFree(file: file, command: "rulelens dump")
        if FileManager.default.fileExists(atPath: file) && !a.runtime.force && !a.resume {
            throw RuleLensError("\(file) already exists", fix: "pass --force to overwrite it, --resume to continue an incomplete dump, or choose another --out")
        }
        let chosen = try a.chunkCompression()
        let dataSource = try a.source.source()
        var loaded = try dataSource.load(a.part)
        if let limit = a.limit, limit < loaded.examples.count { loaded.examples = Array(loaded.examples.prefix(limit)) }
        if !a.out.hasSuffix(".h5") { try OutputCommit.createFolder(a.out) }
        var options = DumpOptions(checkpoint: a.checkpoint.path, examples: loaded.examples,
                                  sourceData: dataSource.file.map { _ in loaded.origin } ?? "\(loaded.origin) (\(a.part.rawValue))",
                                  hooks: a.patterns, out: file)
        options.seed = Int(dataSource.spec?.seed ?? loaded.meta?.seed ?? 0)
        options.positions = a.positions
        options.batch = a.batch
        options.compression = chosen
        options.force = a.runtime.force
        options.resume = a.resume
        options.progress = ctx.progress.isEnabled
        options.exportNPY = a.exportNpy?.path
        let summary: DumpSummary
        if ctx.inSpec {
            summary = try Jobs.dump(options)
        } else {   // under mpirun, each rank writes its shard
            let world = Communicator.world
            if a.runtime.threads == nil && world.size > 1 { Parallel.configure(threads: world.defaultThreads) }
            summary = try Jobs.dump(options, communicator: world)
        }
        let result = Result(examples: summary.examples, examplesThisRun: summary.examplesThisRun, sites: summary.sites.count,
                            siteNames: summary.sites, teacherForcedAccuracy: summary.accuracy.isFinite ? summary.accuracy : nil,
                            megabytes: Double(summary.activationBytes) / 1e6)
        return VerbOutcome(result, files: a.out.hasSuffix(".h5") ? [] : ["acts.h5"])
    }

    public static func lines(_ r: Result, _ a: Arguments) -> [String] {
        [String(format: "wrote %@: %d examples (%d this run), %d sites, %.1f MB of activations, teacher-forced accuracy %@",
                a.file, r.examples, r.examplesThisRun, r.sites, r.megabytes, r.teacherForcedAccuracy.map { String(format: "%.4f", $0) } ?? "n/a")]
    }
}
