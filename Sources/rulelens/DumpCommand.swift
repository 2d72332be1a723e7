import ArgumentParser
import Foundation
import RuleLensDistributed
import RuleLensJobs
import RuleLensVerbs

/// `rulelens dump`: record hook sites of a checkpoint on a data set into an HDF5 activation file.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Record chosen hook sites of a model on a data set into an HDF5 activation file.",
        discussion: """
        Each example runs as [bos] + prompt + target + [eos] (teacher-forced). The layout (Data/ACTIVATIONS.md): /meta columns (id, tokens, length, answer_pos, prompt, target, prediction, correct, …) and one float32 /acts/<hook name> dataset per site. The file says complete=0 until the dump finishes.

        Examples:
          rulelens dump --checkpoint runs/add --data test.jsonl --hooks 'blocks.*.hook_resid_post' --out resid.h5
          rulelens dump --checkpoint runs/add --task addition --split leave-square-out --hooks '*' --positions answer --out all.h5

        Under mpirun (mpirun -np N rulelens dump … --out OUT.h5), rank r writes its contiguous slice of the examples to \
        OUT.rank{r}.h5 and, once every shard is complete, rank 0 writes OUT.h5: virtual datasets over the shards that \
        every reader sees as one file (keep the shards beside it). --resume continues each shard.
        """)

    @Option(help: "Checkpoint directory (model.safetensors, config.json, vocab.json).")
    var checkpoint: String

    @OptionGroup(title: "Examples (--data FILE, or a generated --task)")
    var source: DataSourceOptions

    @Option(help: "Which part of a generated data set (or of a `data generate` directory) to run: train, test or all (train then test).")
    var part: String = "test"

    @Option(help: "Comma-separated hook names or glob patterns (TransformerLens names; '*' = every site).")
    var hooks: String

    @Option(parsing: .unconditional, help: "Positions to keep: all, last (the <eos>), answer (last prompt position), or an index K (negative: from the end).")
    var positions: String = "all"

    @Option(parsing: .unconditional, help: "Examples per forward pass.")
    var batch: Int = 32

    @Option(help: "How activation chunks are stored: none, gzip (level 1, with shuffle) or gzip:LEVEL (1-9). Default: \(ChunkCompression.default).")
    var compression: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Deprecated spelling of --compression: a gzip level 0-9, 0 = none.", visibility: .hidden))
    var gzip: Int?

    @Option(help: "Output HDF5 file.")
    var out: String

    @Flag(help: "Overwrite an existing output file.")
    var force = false

    @Flag(help: "Continue an incomplete output file (same checkpoint, data, hooks and positions).")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Do not check the checkpoint's files against the SHA-256 manifest in its rulelens.json (for files edited on purpose).")
    var noVerify = false

    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores; under mpirun the default shares a node's cores among its ranks).")
    var threads: Int?

    @Option(help: ArgumentHelp("Verification: also write each site's stored rows to DIR/<hook>.npy.", visibility: .hidden))
    var exportNpy: String?

    func run() throws {
        if noVerify { Checkpoint.verifiesByDefault = false }
        try configureThreads(threads)
        let patterns = hooks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !patterns.isEmpty else {
            throw RuleLensError("--hooks is empty", fix: "pass hook names or patterns, e.g. --hooks 'blocks.*.hook_resid_post'")
        }
        if FileManager.default.fileExists(atPath: out) && !force && !resume {
            throw RuleLensError("\(out) already exists", fix: "pass --force to overwrite it, --resume to continue an incomplete dump, or choose another --out")
        }
        guard let which = DataPart(rawValue: part) else {
            throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, --part test or --part all")
        }
        // Checked before any data is loaded.
        if gzip != nil && compression != nil {
            throw RuleLensError("--gzip and --compression both given", fix: "pass only --compression (none, gzip or gzip:LEVEL)")
        }
        var chosen = ChunkCompression.default
        if let gzip {
            guard (0...9).contains(gzip) else { throw RuleLensError("--gzip \(gzip) is outside 0…9", fix: "pass --compression none, gzip or gzip:LEVEL") }
            chosen = gzip == 0 ? .none : .gzip(level: gzip)
        } else if let compression {
            chosen = try ChunkCompression(parsing: compression)
        }
        let dataSource = try source.source()
        let loaded = try dataSource.load(which)
        var options = DumpOptions(checkpoint: checkpoint, examples: loaded.examples,
                                  sourceData: dataSource.file.map { _ in loaded.origin } ?? "\(loaded.origin) (\(part))",
                                  hooks: patterns, out: out)
        options.seed = Int(dataSource.spec?.seed ?? loaded.meta?.seed ?? 0)
        options.positions = positions
        options.batch = batch
        options.compression = chosen
        options.force = force
        options.resume = resume
        options.progress = !quiet
        options.exportNPY = exportNpy
        let world = Communicator.world
        if threads == nil && world.size > 1 { Parallel.configure(threads: world.defaultThreads) }
        let summary = try Jobs.dump(options, communicator: world)
        guard world.isRoot else { return }
        let mb = Double(summary.activationBytes) / 1e6
        print(String(format: "wrote %@: %d examples (%d this run), %d sites, %.1f MB of activations, teacher-forced accuracy %.4f, %.2f s",
                     summary.out, summary.examples, summary.examplesThisRun, summary.sites.count, mb, summary.accuracy, summary.seconds))
    }
}

/// `rulelens dump-info FILE.h5`: validate an activation file and list its attributes, sites and columns.
struct DumpInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-info",
        abstract: "Check an activation file written by `rulelens dump` and list its sites, shapes and meta columns.")

    @Argument(help: "The HDF5 activation file.")
    var file: String

    @Flag(help: "Open a file whose dump did not finish (complete=0).")
    var allowIncomplete = false

    @Flag(help: "Read the whole file: every chunk of every dataset (inflated) and every attribute (JSON ones parsed).")
    var verify = false

    func run() throws {
        let reader = try ActivationStoreReader(path: file, allowIncomplete: allowIncomplete)
        // --verify reads everything first, so a damaged file fails before anything is listed.
        let line = ProgressLine(enabled: true)
        let verification = verify ? try reader.verify { done, total in line.update("verify: \(done)/\(total) datasets", final: done == total) } : nil
        print("\(file): \(reader.count) examples, complete=\(reader.complete ? 1 : 0), positions=\(reader.positions)")
        for key in ["model_config", "source_checkpoint", "source_data", "created_utc", "rulelens_version"] {
            if let value = reader.attribute(key) { print("  \(key): \(value)") }
        }
        print("meta: \(reader.metaColumns.joined(separator: ", "))")
        let width = reader.sites.map(\.name.count).max() ?? 0
        for site in reader.sites {
            let shape = "[" + site.shape.map(String.init).joined(separator: ", ") + "]"
            print("  " + site.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(shape)  \(site.dims.joined(separator: ","))")
        }
        if let v = verification {
            print("verified: \(v.datasets) datasets read in full (\(v.values) values, every chunk inflated), \(v.attributes) attributes parsed"
                  + (v.nonFinite > 0 ? "; \(v.nonFinite) activation values are NaN or infinite" : ""))
        }
    }
}
