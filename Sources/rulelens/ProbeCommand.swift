import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensVerbs

/// `rulelens probe pca|separability|linear|cka|ntk`: measurements on an activation dump (or a checkpoint, for ntk).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Measure where a rule lives: PCA, separability, linear probes, CKA, gradient-kernel blocks.",
        subcommands: [ProbePCA.self, ProbeSeparability.self, ProbeLinear.self, ProbeCKA.self, ProbeNTK.self])
}

/// Options every file-based probe takes.
struct ProbeFileOptions: ParsableArguments {
    @Option(help: "HDF5 file: a `rulelens dump`, or any file with float datasets (then name them as /path).")
    var file: String
    @Option(help: "Hook site, `*` pattern (a sweep, one row per site ordered by layer), or /dataset path. Repeatable.")
    var site: [String]
    @Option(parsing: .unconditional, help: "Position of per-position sites: last (the <eos>, the default), answer (last prompt position), mean, or an index (negative: from each example's end); an error for sites stored with one position.")
    var position: String?
    @Flag(help: "Print machine-readable JSON instead of the table.")
    var json = false
    @Option(help: "Write the result arrays to this HDF5 file.")
    var out: String?
    @Option(help: "Write an SVG picture here.")
    var plot: String?
    @Flag(help: "Replace existing --out / --plot files.")
    var force = false
    @Option(parsing: .unconditional, help: "Seed for sampling, folds, control labels and k-means.")
    var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores).")
    var threads: Int?

    func options(label: String?) throws -> ProbeOptions {
        try configureThreads(threads)
        guard !site.isEmpty else { throw RuleLensError("no --site given", fix: "pass --site NAME or a pattern such as --site 'blocks.*.hook_resid_post'") }
        var o = ProbeOptions(file: file, sites: site, label: label)
        o.position = try PositionSelector(parsing: position ?? "last")
        o.positionGiven = position != nil
        o.out = out; o.plot = plot; o.overwrite = force; o.seed = seed
        return o
    }

    func emit(_ report: ProbeReport) throws {
        print(json ? try report.jsonText() : report.table)
        for path in report.written { FileHandle.standardError.write(Data("wrote \(path)\n".utf8)) }
    }
}

struct ProbePCA: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pca",
        abstract: "Principal components of each site: explained variance (ratio), components, projections; --plot draws PC1/PC2 coloured by --label.")
    @OptionGroup var common: ProbeFileOptions
    @Option(help: "Label column to colour the scatter plot by (optional).") var label: String?
    @Option(parsing: .unconditional, help: "Components to keep (default 10, at most the feature count).") var components: Int?
    @Option(help: "covariance (streams the file in --chunk-rows blocks) or svd (in memory).") var method: String = "covariance"
    @Option(parsing: .unconditional, help: "Rows per block when streaming.") var chunkRows: Int = 4096

    func run() throws {
        var o = try common.options(label: label)
        guard let m = PCA.Method(rawValue: method) else { throw RuleLensError("--method \(method) is not covariance or svd", fix: "pass --method covariance or --method svd") }
        if let c = components, c < 1 { throw RuleLensError("--components \(c) must be at least 1", fix: "pass a positive number of components") }
        guard chunkRows >= 1 else { throw RuleLensError("--chunk-rows must be at least 1", fix: "pass e.g. --chunk-rows 4096") }
        o.method = m; o.components = components; o.chunkRows = chunkRows
        try common.emit(try ProbeJob.pca(o))
    }
}

struct ProbeSeparability: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "separability",
        abstract: "How separable the label is at each site: silhouette, Davies–Bouldin, Calinski–Harabasz, Fisher ratio, k-NN accuracy, k-means NMI.")
    @OptionGroup var common: ProbeFileOptions
    @Option(help: "Label column (/meta/COLUMN, or a /dataset path).") var label: String
    @Option(name: .customLong("k"), parsing: .unconditional, help: "Neighbours for the leave-one-out k-NN accuracy.") var neighbours: Int = 5
    @Option(parsing: .unconditional, help: "Compute the silhouette on this many examples drawn with --seed (default: exact over all).") var sample: Int?
    @Option(parsing: .unconditional, help: "k-means clusters (default: the number of classes).") var clusters: Int?
    @Option(help: "Metric drawn by --plot: silhouette, davies_bouldin, calinski_harabasz, fisher_ratio, knn_accuracy, kmeans_nmi.") var plotMetric: String = "silhouette"

    func run() throws {
        var o = try common.options(label: label)
        guard neighbours >= 1 else { throw RuleLensError("--k \(neighbours) must be at least 1", fix: "pass e.g. --k 5") }
        if let c = clusters, c < 1 { throw RuleLensError("--clusters \(c) must be at least 1", fix: "pass a positive cluster count") }
        o.neighbours = neighbours; o.silhouetteSample = sample; o.clusters = clusters; o.plotMetric = plotMetric
        try common.emit(try ProbeJob.separability(o))
    }
}

struct ProbeLinear: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "linear",
        abstract: "Cross-validated L2 logistic-regression probe accuracy, control-task accuracy and selectivity (Hewitt & Liang).")
    @OptionGroup var common: ProbeFileOptions
    @Option(help: "Label column.") var label: String
    @Option(name: .customLong("C"), parsing: .unconditional, help: "Inverse L2 strength, as scikit-learn's C; a comma-separated list (e.g. 0.01,0.1,1,10) runs the regularisation path, each C warm-started from the previous one.") var C: String = "1"
    @Option(parsing: .unconditional, help: "Cross-validation folds.") var folds: Int = 5
    @Flag(help: "Contiguous folds in row order (scikit-learn KFold without shuffle) instead of seeded shuffled folds.") var contiguousFolds = false
    @Option(help: "Column whose values are the control task's input types (default: prompt).") var controlType: String?
    @Flag(help: "Skip the control task.") var noControl = false
    @Option(help: "Metric drawn by --plot: accuracy or selectivity.") var plotMetric: String = "accuracy"

    func run() throws {
        var o = try common.options(label: label)
        let Cs = try C.split(separator: ",").map { text -> Double in
            guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v > 0, v.isFinite else {
                throw RuleLensError("--C \(C): every value must be positive (a number, or a comma-separated list of them)", fix: "pass e.g. --C 1 or --C 0.01,0.1,1,10")
            }
            return v
        }
        guard let first = Cs.first else { throw RuleLensError("--C is empty", fix: "pass e.g. --C 1") }
        o.C = first; o.Cs = Cs.count > 1 ? Cs : []
        o.folds = folds; o.contiguousFolds = contiguousFolds; o.controlType = controlType; o.noControl = noControl
        o.plotMetric = plotMetric
        try common.emit(try ProbeJob.linear(o))
    }
}

struct ProbeCKA: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cka",
        abstract: "Linear CKA between sites: two sites give one number, a pattern a layer-by-layer matrix (--plot: heatmap).")
    @OptionGroup var common: ProbeFileOptions

    func run() throws { try common.emit(try ProbeJob.cka(try common.options(label: nil))) }
}

struct ProbeNTK: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ntk",
        abstract: "Per-parameter-block cosine similarity of per-example gradients within vs between rules (study 2's NTK argument).")
    @Option(help: "Checkpoint folder (rulelens train --out).") var checkpoint: String
    @Option(help: "Labelled examples (JSON Lines).") var data: String
    @Option(help: "Example field holding the rule: rule, rule_id, a or b.") var label: String = "rule"
    @Option(parsing: .unconditional, help: "At most this many examples per rule (seeded draw).") var maxPerRule: Int = 32
    @Option(help: "Loss positions: target or all.") var lossOn: LossOn = .target
    @Option(parsing: .unconditional, help: "Seed of the example draw.") var seed: UInt64 = 0
    @Flag(help: "Print machine-readable JSON instead of the table.") var json = false
    @Option(help: "Write the result arrays to this HDF5 file.") var out: String?
    @Option(help: "Write an SVG line chart (within − between by layer, per block) here.") var plot: String?
    @Flag(help: "Replace existing --out / --plot files.") var force = false
    @Flag(help: "Do not check the checkpoint's files against the SHA-256 manifest in its rulelens.json (for files edited on purpose).") var noVerify = false
    @Option(parsing: .unconditional, help: "Threads for RuleLens loops and BLAS (0 or default: all cores).") var threads: Int?

    func run() throws {
        if noVerify { Checkpoint.verifiesByDefault = false }
        try configureThreads(threads)
        var o = NTKOptions(checkpoint: checkpoint, data: data)
        o.label = label; o.maxPerRule = maxPerRule; o.lossOn = lossOn; o.seed = seed
        o.out = out; o.plot = plot; o.overwrite = force
        let report = try ProbeJob.ntk(o)
        print(json ? try report.jsonText() : report.table)
        for path in report.written { FileHandle.standardError.write(Data("wrote \(path)\n".utf8)) }
    }
}
