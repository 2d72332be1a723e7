import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs
import RuleLensModel
import RuleLensNumerics

/// `rulelens prior-experiment`: the retrieval experiment in one command — GPTs trained on the same data and seed with
/// the rule prior at each injection site (and none), each measured by `rulelens retrieve`, compared side by side.
struct PriorExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prior-experiment",
        abstract: "Train a GPT per rule-prior injection site (none, query, key, value, embedding, memory) on the same data and seed, and compare retrieval.",
        discussion: """
        DATA is a `rulelens data generate` folder (train.jsonl for training; test.jsonl, with `sources`, for the test). \
        Each site trains into OUT/SITE (an existing checkpoint there is measured as it is) and is measured as \
        `rulelens retrieve` measures a rule-prior checkpoint (the VAE sites: a language VAE with that injection of z, \
        decoder of the same shape, --decode target). The defaults (2 layers, d_model 32, 500 steps, 9 models) take \
        about 10 minutes on 2 shared cores. Writes OUT/comparison.txt (the table), comparison.json, \
        exact.svg and mass.svg (bars by site with 95% intervals) and heatmap.svg (mass on source keys, layer × head). \
        --quick: a 1-layer d32 model, 60 steps, 48 test examples, 50 bootstrap resamples (a smoke run, under a minute).
        """)

    @Option(help: "A `rulelens data generate` folder (train.jsonl, test.jsonl).") var data: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Sites, comma-separated: none, query, key, value, embedding, memory (GPTs), vae-memory, vae-query, vae-embedding (language VAEs).")
    var sites: String = "none,query,key,value,embedding,memory,vae-memory,vae-query,vae-embedding"
    @Option(help: "The data column that selects the prior.") var column: String = "rule"
    @Option(help: "Blocks.") var layers: Int = 2
    @Option(help: "Heads.") var heads: Int = 4
    @Option(name: .customLong("d-model"), help: "Width.") var dModel: Int = 32
    @Option(help: "Context length.") var ctx: Int = 96
    @Option(help: "Optimizer steps per model.") var steps: Int = 500
    @Option(help: "Examples per step.") var batch: Int = 32
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Warm-up steps.") var warmup: Int = 50
    @Option(help: "Seed of every model (initialisation and data order) and of the controls.") var seed: UInt64 = 0
    @Option(help: "Test on the first N examples of test.jsonl (0: all).") var limit: Int = 360
    @Option(help: "Bootstrap resamples.") var bootstrap: Int = 1000
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "A smoke run: 1 layer, d_model 32, 60 steps, 48 examples, 50 resamples.") var quick = false

    func run() throws {
        if let threads { Parallel.configure(threads: threads) }
        guard limit >= 0, bootstrap >= 0 else {
            throw RuleLensError("--limit and --bootstrap must be 0 or more", fix: "pass e.g. --limit 360 --bootstrap 1000")
        }
        let train = (data as NSString).appendingPathComponent("train.jsonl"), test = (data as NSString).appendingPathComponent("test.jsonl")
        for file in [train, test] where !FileManager.default.fileExists(atPath: file) {
            throw RuleLensError("\(file) does not exist", fix: "pass a folder written by `rulelens data generate --task … --out DIR`")
        }
        var t = TrainOptions(data: train)
        t.layers = quick ? 1 : layers; t.heads = quick ? 2 : heads; t.dModel = quick ? 32 : dModel; t.ctx = ctx
        t.steps = quick ? 60 : steps; t.batch = quick ? 16 : batch; t.lr = lr; t.warmup = quick ? 5 : warmup; t.seed = seed
        t.threads = threads; t.saveEvery = 0
        var o = PriorExperimentOptions(train: train, test: test, out: out, trainOptions: t)
        o.sites = sites.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        o.column = column
        o.limit = quick ? min(limit == 0 ? 48 : limit, 48) : (limit == 0 ? nil : limit)
        o.retrieval.bootstrap = quick ? min(bootstrap, 50) : bootstrap
        o.retrieval.seed = seed
        let models = try PriorExperiment.run(o, progress: ProgressLine())
        print(PriorExperiment.table(models))
        print("wrote \(out)/comparison.txt, comparison.json, exact.svg, mass.svg, heatmap.svg")
    }
}
