import Foundation
import RuleLensDistributed
import RuleLensModel
import RuleLensNumerics
import RuleLensStore
import RuleLensTasks

/// `rulelens dump` under mpirun: each rank writes its contiguous slice of the examples to `OUT.rank{r}.h5`; once
/// every shard is complete, rank 0 writes `OUT` as HDF5 virtual datasets over them (`ActivationStoreJoin`).
extension Jobs {
    /// The shard file of rank `rank` for output `out`: `runs/x/acts.h5` → `runs/x/acts.rank1.h5`.
    public static func shardPath(_ out: String, rank: Int) -> String {
        let url = URL(fileURLWithPath: out)
        let ext = url.pathExtension.lowercased()
        let stem = (ext == "h5" || ext == "hdf5") ? String(out.dropLast(ext.count + 1)) : out
        return stem + ".rank\(rank).h5"
    }

    /// The examples of shard `rank` of `ranks`: contiguous, in rank order, sizes differing by at most one.
    public static func shardRange(count: Int, rank: Int, ranks: Int) -> Range<Int> {
        (count * rank / ranks)..<(count * (rank + 1) / ranks)
    }

    /// Dumps across the ranks of `communicator`; with one rank this is exactly `dump(options)`.
    ///
    /// Ranks first agree (one collective) on the rulelens binary, the options, the examples and the checkpoint's
    /// weights; any difference stops every rank with one error. `--resume` continues each incomplete shard and skips
    /// complete ones; `--force` redoes every shard. An error on any rank stops all of them (`Communicator.together`),
    /// and `OUT` is only written, with complete=1, once every shard is complete.
    public static func dump(_ options: DumpOptions, communicator world: Communicator) throws -> DumpSummary {
        guard world.size > 1 else { return try dump(options) }
        let started = Date()
        let shard = DumpShard(index: world.rank, count: world.size,
                              examples: shardRange(count: options.examples.count, rank: world.rank, ranks: world.size))
        let shardFile = shardPath(options.out, rank: world.rank)
        let (model, tokenizer) = try world.together { () -> (any LanguageModel, any TextTokenizer) in
            if options.force && options.resume {
                throw RuleLensError("--force and --resume contradict each other", fix: "pass --resume to continue the shards, or --force to start over")
            }
            if options.exportNPY != nil {
                throw RuleLensError("--export-npy is not available under mpirun", fix: "run the dump with one process to export .npy files")
            }
            guard !options.examples.isEmpty else { throw RuleLensError("there are no examples to dump", fix: "give a non-empty --data file") }
            let model = try Jobs.loadModel(options.checkpoint, allowVAE: true)
            return (model, try Jobs.tokenizer(checkpoint: options.checkpoint, vocabSize: model.vocabSize))
        }
        try world.agree([
            AgreementItem("rulelens binary", Communicator.binaryFingerprint()),
            AgreementItem("dump options", try dumpOptionsJSON(options)),
            AgreementItem("examples", examplesFingerprint(options)),
            AgreementItem("checkpoint weights", checkpointFingerprint(model)),
        ])

        // What to do with existing files, decided where they are seen: OUT on rank 0, each shard on its rank.
        var mine = options
        mine.out = shardFile
        mine.shard = shard
        mine.progress = options.progress && world.isRoot
        let shardDone = try world.together { () -> Bool in
            let fm = FileManager.default
            if world.isRoot, fm.fileExists(atPath: options.out) {
                guard options.force || options.resume else {
                    throw RuleLensError("\(options.out) already exists", fix: "pass --force to overwrite it, --resume to continue an incomplete dump, or choose another --out")
                }
                if options.resume, !(try isJoinedFile(options.out)) {
                    throw RuleLensError("\(options.out) was written by a dump without mpirun; it cannot be resumed as shards",
                                        fix: "resume it without mpirun, or pass --force to redo it with \(world.size) ranks")
                }
                // The joined file is rewritten at the end: never leave one pointing at shards being rewritten.
                try fm.removeItem(atPath: options.out)
            }
            guard fm.fileExists(atPath: shardFile) else { mine.resume = false; mine.force = false; return false }
            if options.resume, try shardComplete(shardFile, shard: shard) { return true }
            if !options.force && !options.resume {
                throw RuleLensError("\(shardFile) already exists (a shard of an earlier dump)",
                                    fix: "pass --resume to continue that dump, --force to start over, or choose another --out")
            }
            return false
        }
        let part: DumpSummary? = try world.together {
            shardDone ? nil : try dump(model: model, tokenizer: tokenizer, mine)
        }
        // Every shard is complete here: rank 0 joins them into OUT.
        let shards = (0..<world.size).map { shardPath(options.out, rank: $0) }
        try world.together { if world.isRoot { try ActivationStoreJoin.write(path: options.out, shards: shards) } }

        let thisRun = part?.examplesThisRun ?? 0
        let totals = [Double(thisRun), (part?.accuracy).map { $0.isNaN ? 0 : $0 * Double(thisRun) } ?? 0, Double(part?.activationBytes ?? 0)]
        var summed = totals
        world.allreduceSum(&summed)
        return DumpSummary(out: options.out, examples: options.examples.count, examplesThisRun: Int(summed[0]),
                           sites: try model.resolveHooks(options.hooks),
                           accuracy: summed[0] > 0 ? summed[1] / summed[0] : .nan,
                           seconds: Date().timeIntervalSince(started), activationBytes: Int(summed[2]))
    }

    /// Whether `path` is a joined (virtual) activation file.
    static func isJoinedFile(_ path: String) throws -> Bool {
        let file = try HDF5File.open(path)
        defer { file.close() }
        return file.hasAttribute("shards")
    }

    /// Whether a shard file is complete and belongs to this shard of this dump layout.
    static func shardComplete(_ path: String, shard: DumpShard) throws -> Bool {
        let file = try HDF5File.open(path)
        defer { file.close() }
        guard (try? file.intAttribute("complete")) == 1 else { return false }
        guard (try? file.stringAttribute("shard_count")) == "\(shard.count)",
              (try? file.stringAttribute("shard_first_example")) == "\(shard.examples.lowerBound)",
              (try? file.intAttribute("n_examples")) == shard.examples.count else {
            throw RuleLensError("\(path) is a complete shard of a dump with another number of ranks or examples",
                                fix: "resume with the same number of ranks (mpirun -np) and data, or pass --force to start over")
        }
        return true
    }

    /// The options every rank must share, as sorted JSON (so a difference is named by key).
    static func dumpOptionsJSON(_ o: DumpOptions) throws -> String {
        let fields: [String: Any] = ["checkpoint": o.checkpoint, "source_data": o.sourceData, "seed": o.seed, "hooks": o.hooks,
                                     "positions": o.positions, "batch": o.batch, "out": o.out, "force": o.force,
                                     "resume": o.resume, "gzip": o.gzip]
        return String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// FNV-1a over every example's fields.
    static func examplesFingerprint(_ o: DumpOptions) -> String {
        var f = Fingerprint()
        for e in o.examples {
            f.add("\(e.id ?? -1)\u{1}\(e.prompt)\u{1}\(e.target)\u{1}\(e.rule ?? "")\u{1}\(e.ruleId ?? -1)\u{1}\(e.a ?? -1)\u{1}\(e.b ?? -1)\u{1}\(DumpPlan.sourcesJSON(e.sources))\u{2}")
        }
        return f.hex
    }
}
