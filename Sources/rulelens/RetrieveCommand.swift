import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// `rulelens retrieve`: the key–query–value retrieval test with training-free rule priors.
struct RetrieveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Does a rule prior in the Query raise attention on the right keys? (training-free priors, with controls)",
        discussion: """
        For each injection layer, site (q; k and v as controls) and --alpha, adds α·Δ to every position, where Δ is the \
        example's rule's mean activation at that site minus the mean over all rules, and measures: exact match and \
        per-token accuracy (teacher-forced argmax, which equals greedy exact match), and per layer and head the attention \
        mass from each target position onto its source keys (the `sources` of the data), the best key's rank and the \
        attention entropy. Conditions: none, the rule's prior, a wrong rule's prior, a random vector of the prior's norm. \
        Every number has a 95% bootstrap interval over examples, overall and per rule. \
        A checkpoint trained with a rule prior (`train --rule-prior COLUMN --inject SITE`) is measured with its own trained \
        rows instead (--layers, --sites and --alpha do not apply): none, the rule's prior, a wrong rule's prior, a random \
        vector of the prior's norm per layer, and the prior moved to the other per-layer sites (query, key, value, memory). \
        A language VAE (`rulelens vae train`) is measured with its latent injected as it was trained: z = 0, z from the \
        encoder, the rule's mean z (the prior), a wrong rule's mean z, and a random z of the rule mean's norm.
        """)

    @Option(help: "Checkpoint folder (the --out of rulelens train).") var checkpoint: String
    @OptionGroup var source: DataSourceOptions
    @Option(help: "With --task or a `data generate` directory: which part to use (train, test, all).") var part: String = "test"
    @Option(help: "The rule label: rule or rule_id.") var label: String = "rule"
    @Option(help: "Layers to add the prior at, comma-separated (default: all).") var layers: String?
    @Option(help: "Sites, comma-separated: q (the hypothesis), k, v (controls).") var sites: String = "q,k,v"
    @Option(help: "Scales of the prior, comma-separated (finite).") var alpha: String = "0.5,1,2"
    @Option(help: "Bootstrap resamples for the 95% intervals.") var bootstrap: Int = 1000
    @Option(help: "Seed of the random control and the bootstrap.") var seed: UInt64 = 0
    @Option(help: "Examples per forward pass.") var batch: Int = 32
    @Option(help: "Use at most this many examples (the first N).") var limit: Int?
    @Flag(help: "Print every number as one JSON object.") var json = false
    @Option(help: "Write the arrays (mean mass [condition, layer, head], summaries with intervals) to this HDF5 file.") var out: String?
    @Option(help: "Write a bar chart of the mass on source keys per condition (SVG).") var plot: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.configure(threads: threads) }
        for path in [out, plot].compactMap({ $0 }) { try refuseToOverwrite(path) }
        guard bootstrap >= 0, batch > 0, (limit ?? 1) > 0 else {
            throw RuleLensError("--bootstrap must be ≥ 0 and --batch/--limit positive", fix: "pass e.g. --bootstrap 1000 --batch 32")
        }
        guard let dataPart = DataPart(rawValue: part) else {
            throw RuleLensError("--part \(part) is not train, test or all", fix: "pass --part train, --part test or --part all")
        }
        var options = RetrievalOptions()
        options.layers = try layers.map { try parseList($0, "--layers") { Int($0) } }
        options.sites = try parseList(sites, "--sites") { PriorSite(rawValue: $0) }
        options.alphas = try parseList(alpha, "--alpha") { Float($0) }
        options.bootstrap = bootstrap; options.seed = seed; options.batchSize = batch
        let loaded = try source.source().load(dataPart)
        var examples = loaded.examples
        if let limit { examples = Array(examples.prefix(limit)) }
        if try Checkpoint.rulePriorSpec(checkpoint) != nil {
            // A checkpoint trained with a rule prior: its own table, column and site; the conditions of RulePriorRetrieval.
            let (model, vocab) = try Checkpoint.loadRulePrior(checkpoint)
            let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: checkpoint)
            let path = FileManager.default.fileExists(atPath: loaded.origin) ? loaded.origin : nil
            let values = try RulePriorData.values(column: model.spec.column, examples: examples, path: path)
            let report = try RulePriorRetrieval.run(model: model, tokenizer: tokenizer, examples: examples, values: values,
                                                    source: loaded.origin, options: options, progress: ProgressLine())
            try write(report)
            return
        }
        let values: [String]
        switch label {
        case "rule": values = try examples.enumerated().map { i, e in
            guard let r = e.rule else { throw RuleLensError("example \(i + 1) has no `rule`", fix: "use data with a rule label per example") }
            return r
        }
        case "rule_id": values = try examples.enumerated().map { i, e in
            guard let r = e.ruleId else { throw RuleLensError("example \(i + 1) has no `rule_id`", fix: "use --label rule or data with rule_id") }
            return String(r)
        }
        default: throw RuleLensError("--label \(label) is not supported", fix: "pass --label rule or --label rule_id")
        }
        if try ModelFolder.modelType(checkpoint) == "rulelens-vae" {
            // A language VAE: z = 0, z from the encoder, the rule's mean z, a wrong rule's, random of equal norm.
            let vae = try VAECheckpoint.load(checkpoint)
            try write(try VAEPriorRetrieval.run(vae: vae, examples: examples, values: values, source: loaded.origin, options: options,
                                                progress: ProgressLine()))
            return
        }
        let (model, vocab) = try Checkpoint.load(checkpoint)
        let tokenizer = try Jobs.tokenizer(vocab: vocab, checkpoint: checkpoint)
        let report = try RetrievalJob.run(model: model, tokenizer: tokenizer, examples: examples, labels: Labels(strings: values),
                                          source: loaded.origin, options: options, progress: ProgressLine())
        try write(report)
    }

    func write(_ report: RetrievalReport) throws {
        if json {
            print(String(decoding: try RetrievalJob.json(report), as: UTF8.self))
        } else {
            print(RetrievalJob.table(report))
        }
        if let out { try RetrievalJob.writeHDF5(report, to: out) }
        if let plot { try AtomicFile.write(Data(RetrievalJob.plot(report).utf8), to: plot) }
    }
}

/// Parses a comma-separated list; an item `parse` rejects is an error naming the option.
func parseList<T>(_ text: String, _ option: String, _ parse: (String) -> T?) throws -> [T] {
    try text.split(separator: ",").map { raw in
        let item = raw.trimmingCharacters(in: .whitespaces)
        guard let value = parse(item) else {
            throw RuleLensError("\(option) item '\(item)' is not valid", fix: "pass a comma-separated list, e.g. \(option) 0,1")
        }
        return value
    }
}
