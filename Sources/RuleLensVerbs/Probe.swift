import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// Which measurement `probe` makes on an activation file.
public enum ProbeMethod: String, CaseIterable, ExpressibleByArgument, Sendable {
    case pca, separability, linear, cka
}

/// How `probe pca` computes the components.
public enum PCASolver: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Streams the file in --chunk-rows blocks.
    case covariance
    /// In memory.
    case svd
}

/// The metric a `probe separability|linear` plot draws.
public enum ProbePlotMetric: String, CaseIterable, ExpressibleByArgument, Sendable {
    case silhouette, daviesBouldin = "davies_bouldin", calinskiHarabasz = "calinski_harabasz", fisherRatio = "fisher_ratio",
         knnAccuracy = "knn_accuracy", kmeansNMI = "kmeans_nmi", accuracy, selectivity

    static let separability: [ProbePlotMetric] = [.silhouette, .daviesBouldin, .calinskiHarabasz, .fisherRatio, .knnAccuracy, .kmeansNMI]
    static let linear: [ProbePlotMetric] = [.accuracy, .selectivity]
}

/// Where a `--out` writes: a path ending in `.h5` is the results file itself (no picture); anything else is a folder
/// (created) that receives `file` and `picture`.
struct OutputTarget {
    var file: String?
    var picture: String?
    var folder: String?

    init(_ out: String?, file name: String, picture: String?) throws {
        guard let out else { return }
        if out.hasSuffix(".h5") { file = out; return }
        try OutputCommit.createFolder(out)
        folder = out
        file = (out as NSString).appendingPathComponent(name)
        self.picture = picture.map { (out as NSString).appendingPathComponent($0) }
    }

    /// `written` (absolute or as given) relative to the folder, split into figures (SVG) and files.
    func outcome(_ written: [String], title: (String) -> String) -> (figures: [VerbFigure], files: [String]) {
        guard folder != nil else { return ([], []) }
        let names = written.map { ($0 as NSString).lastPathComponent }
        return (names.filter { $0.hasSuffix(".svg") }.map { VerbFigure(title: title($0), file: $0) }, names.filter { !$0.hasSuffix(".svg") })
    }
}

/// `probe METHOD`: measurements on an activation file (a `rulelens dump`, or any HDF5 file with float datasets), per
/// site, ordered by layer. Results hold the analysis's own JSON and, for per-site analyses, each numeric metric per
/// layer grouped by site kind (`by_kind.hook_mlp_out.knn_accuracy`) and by component (`by_component.ffn.silhouette`).
public enum ProbeVerb: Verb {
    public static let commandPath = ["probe"]
    public static let abstract = "Measure where a rule lives in a dump: pca, separability, linear probes (with a control task) or CKA, per site."
    public static let discussion = """
        pca: principal components of each site (explained variance, components, projections; the plot: PC1/PC2 coloured \
        by --label). separability: silhouette, Davies–Bouldin, Calinski–Harabasz, Fisher ratio, k-NN accuracy and k-means \
        NMI of --label. linear: cross-validated L2 logistic-regression accuracy, control-task accuracy and selectivity \
        (Hewitt & Liang). cka: linear CKA between sites (two sites: one number; a pattern: a layer-by-layer matrix). \
        With --out DIR, writes DIR/probe.h5 (the result arrays) and DIR/plot.svg; with --out FILE.h5, the arrays only. \
        `rulelens probe ntk` (gradient-kernel blocks of a checkpoint) is its own command.
        """

    public struct Arguments: VerbArguments {
        @Argument(help: "The measurement: pca, separability, linear or cka.")
        public var method: ProbeMethod
        @Option(help: "HDF5 file: a `rulelens dump` (or `rulelens relabel`), or any file with float datasets (then name them as /path).")
        public var file: InputPath
        @Option(help: "Hook site, `*` pattern (a sweep, one row per site ordered by layer), or /dataset path. Repeatable.")
        public var site: [String] = []
        @Option(parsing: .unconditional, help: "Position of per-position sites: last (the <eos>, the default), answer (last prompt position), mean, or an index (negative: from each example's end); an error for sites stored with one position.")
        public var position: String?
        @Option(help: "Label column (/meta/COLUMN, or a /dataset path): needed by separability and linear; pca colours its plot by it.")
        public var label: String?
        @Option(parsing: .unconditional, help: "Seed for sampling, folds, control labels and k-means.")
        public var seed: UInt64 = 0

        @Option(parsing: .unconditional, help: "pca: components to keep (default 10, at most the feature count).")
        public var components: Int?
        @Option(help: "pca: covariance (streams the file in --chunk-rows blocks) or svd (in memory).")
        public var solver: PCASolver = .covariance
        @Option(parsing: .unconditional, help: "pca: rows per block when streaming.")
        public var chunkRows: Int = 4096

        @Option(name: .customLong("k"), parsing: .unconditional, help: "separability: neighbours for the leave-one-out k-NN accuracy.")
        public var k: Int = 5
        @Option(parsing: .unconditional, help: "separability: compute the silhouette on this many examples drawn with --seed (default: exact over all).")
        public var sample: Int?
        @Option(parsing: .unconditional, help: "separability: k-means clusters (default: the number of classes).")
        public var clusters: Int?

        @Option(name: .customLong("C"), parsing: .unconditional, help: "linear: inverse L2 strength, as scikit-learn's C; a comma-separated list (e.g. 0.01,0.1,1,10) runs the regularisation path, each C warm-started from the previous one.")
        public var C: String = "1"
        @Option(parsing: .unconditional, help: "linear: cross-validation folds.")
        public var folds: Int = 5
        @Flag(help: "linear: contiguous folds in row order (scikit-learn KFold without shuffle) instead of seeded shuffled folds.")
        public var contiguousFolds = false
        @Option(help: "linear: column whose values are the control task's input types (default: prompt).")
        public var controlType: String?
        @Flag(help: "linear: skip the control task.")
        public var noControl = false

        @Option(help: "Metric the plot draws: separability silhouette (default), davies_bouldin, calinski_harabasz, fisher_ratio, knn_accuracy, kmeans_nmi; linear accuracy (default) or selectivity.")
        public var plotMetric: ProbePlotMetric?
        @Option(help: "Folder for probe.h5 (the result arrays) and plot.svg (created; existing files are kept unless --force), or a FILE.h5 for the arrays alone.")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        /// The C values of --C (one, or a regularisation path).
        public func Cs() throws -> [Double] {
            let values = C.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! > 0 && Float($0!).isFinite }) else {
                throw ValidationError("--C \(C): every value must be a positive number (one, or a comma-separated list); pass e.g. --C 1 or --C 0.01,0.1,1,10")
            }
            return values.map { $0! }
        }

        public func validate() throws {
            if site.isEmpty { throw ValidationError("no --site given; pass --site NAME or a pattern such as --site 'blocks.*.hook_resid_post'") }
            if let position {
                do { _ = try PositionSelector(parsing: position) } catch {
                    throw ValidationError("--position \(position) is not last, answer, mean or an index; pass e.g. --position last or --position -2")
                }
            }
            if (method == .separability || method == .linear) && label == nil {
                throw ValidationError("probe \(method.rawValue) needs a label column; pass --label COLUMN (e.g. --label rule)")
            }
            if method == .cka && label != nil { throw ValidationError("probe cka takes no --label; drop it") }
            func only(_ given: Bool, _ option: String, _ m: ProbeMethod) throws {
                if given && method != m { throw ValidationError("\(option) is a \(m.rawValue) option, but the method is \(method.rawValue); drop \(option) or run probe \(m.rawValue)") }
            }
            try only(components != nil, "--components", .pca)
            try only(sample != nil, "--sample", .separability)
            try only(clusters != nil, "--clusters", .separability)
            try only(controlType != nil, "--control-type", .linear)
            try only(noControl, "--no-control", .linear)
            try only(contiguousFolds, "--contiguous-folds", .linear)
            if let c = components, c < 1 { throw ValidationError("--components is \(c); pass a positive number of components") }
            if chunkRows < 1 { throw ValidationError("--chunk-rows is \(chunkRows); pass a positive number, e.g. --chunk-rows 4096") }
            if k < 1 { throw ValidationError("--k is \(k); pass a positive number of neighbours, e.g. --k 5") }
            if let s = sample, s < 2 { throw ValidationError("--sample is \(s); pass at least 2 examples (or leave it out for the exact silhouette)") }
            if let c = clusters, c < 1 { throw ValidationError("--clusters is \(c); pass a positive cluster count") }
            if folds < 2 { throw ValidationError("--folds is \(folds); pass at least 2 folds, e.g. --folds 5") }
            _ = try Cs()   // checked whatever the method: a value is refused the same way wherever it is given
            if let m = plotMetric {
                switch method {
                case .separability where !ProbePlotMetric.separability.contains(m), .linear where !ProbePlotMetric.linear.contains(m):
                    let allowed = (method == .linear ? ProbePlotMetric.linear : ProbePlotMetric.separability).map(\.rawValue).joined(separator: ", ")
                    throw ValidationError("--plot-metric \(m.rawValue) is not a \(method.rawValue) metric; pass one of \(allowed)")
                case .pca, .cka:
                    throw ValidationError("--plot-metric is for separability and linear; drop it for probe \(method.rawValue)")
                default: break
                }
            }
        }
    }

    /// The analysis's JSON (its keys as `--json` always printed them) with `by_kind` and `by_component` added.
    public struct Result: Encodable {
        public var json: [String: JSONValue]
        /// The table the command prints (not part of the JSON).
        public var table: String
        public func encode(to encoder: Encoder) throws { try json.encode(to: encoder) }
    }

    /// --quick: fewer folds and a smaller silhouette sample, where the spec sets them.
    public static func quick(_ o: inout QuickOptions) {
        o.cap("folds", 3, orSet: false)
        o.cap("sample", 200, orSet: false)
    }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        let target = try OutputTarget(a.out, file: "probe.h5", picture: "plot.svg")
        var o = ProbeOptions(file: a.file.path, sites: a.site, label: a.label)
        o.progress = ctx.progress
        if let position = a.position { o.position = try PositionSelector(parsing: position); o.positionGiven = true }
        o.out = target.file; o.plot = target.picture; o.overwrite = a.runtime.force; o.seed = a.seed
        o.components = a.components; o.method = a.solver == .svd ? .svd : .covariance; o.chunkRows = a.chunkRows
        o.neighbours = a.k; o.silhouetteSample = a.sample; o.clusters = a.clusters
        if a.method == .linear {
            let Cs = try a.Cs()
            o.C = Cs[0]; o.Cs = Cs.count > 1 ? Cs : []
        }
        o.folds = a.folds; o.contiguousFolds = a.contiguousFolds; o.controlType = a.controlType; o.noControl = a.noControl
        o.plotMetric = a.plotMetric?.rawValue ?? (a.method == .linear ? ProbePlotMetric.accuracy.rawValue : ProbePlotMetric.silhouette.rawValue)
        let report: ProbeReport
        switch a.method {
        case .pca: report = try ProbeJob.pca(o)
        case .separability: report = try ProbeJob.separability(o)
        case .linear: report = try ProbeJob.linear(o)
        case .cka: report = try ProbeJob.cka(o)
        }
        var json = report.json
        if let sites = json["sites"] as? [[String: Any]] { json.merge(grouped(sites)) { a, _ in a } }
        let value = try JSONValue(any: json)
        guard case .object(let object) = value else { throw RuleLensError("probe \(a.method.rawValue) gave no JSON object", fix: "report this as a bug") }
        let (figures, files) = target.outcome(report.written) { "probe \(a.method.rawValue) — \($0)" }
        ctx.log(report.table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return VerbOutcome(Result(json: object, table: report.table), figures: figures, files: files)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        var lines = result.table.components(separatedBy: "\n")
        if let out = a.out { lines.append("wrote into \(out)") }
        return lines
    }

    /// Numeric metrics per layer, grouped by site kind (`hook_attn_out`) and by component (attention, ffn, residual).
    static func grouped(_ sites: [[String: Any]]) -> [String: Any] {
        var byKind: [String: [String: [Double]]] = [:], byComponent: [String: [String: [Double]]] = [:]
        for s in sites {
            guard let site = s["site"] as? String else { continue }
            let parts = site.split(separator: ".")
            let kindName = (parts.count > 2 && parts[0] == "blocks" ? parts.dropFirst(2) : parts[...]).joined(separator: "_")
            let component = (s["component"] as? String) ?? SiteOrder.component(of: site)
            for (k, v) in s {
                guard !isBoolean(v), let n = number(v), !["layer", "n", "d", "knn_k", "kmeans_clusters"].contains(k) else { continue }
                byKind[kindName, default: [:]][k, default: []].append(n)
                byComponent[component, default: [:]][k, default: []].append(n)
            }
        }
        return ["by_kind": byKind, "by_component": byComponent]
    }

    static func isBoolean(_ v: Any) -> Bool {
        if type(of: v) == Bool.self { return true }
        if let n = v as? NSNumber, type(of: v) != Int.self, type(of: v) != Double.self { return String(cString: n.objCType) == "c" }
        return false
    }

    static func number(_ v: Any) -> Double? {
        switch v {
        case let i as Int: return Double(i)
        case let d as Double: return d
        case let f as Float: return Double(f)
        case let n as NSNumber: return n.doubleValue
        default: return nil
        }
    }
}

/// Which example field holds the rule for `probe ntk`.
public enum NTKLabel: String, CaseIterable, ExpressibleByArgument, Sendable {
    case rule, ruleId = "rule_id", a, b
}

/// `probe ntk`: per-parameter-block cosine similarity of per-example gradients within vs between rules (study 2's
/// NTK argument). Results add each block kind's numbers per layer (`by_kind.ffn_in.ratio`) and overall means.
public enum NTKVerb: Verb {
    public static let commandPath = ["probe", "ntk"]
    public static let kind = "ntk"
    public static let abstract = "Gradient-kernel blocks: mean cosine of per-example gradients within vs between rules, per layer and parameter block."
    public static let discussion = """
        Loads every family (gpt2, llama, qwen2; a language VAE measures its encoder too). Per block: within, between, \
        their ratio and difference (raw cosines), and alignment — the centred kernel–label alignment (linear CKA \
        between the unit per-example gradients and the one-hot rules), a scale-free reading comparable across models \
        and regimes. With --out DIR, writes \
        DIR/ntk.h5 (the result arrays) and DIR/ntk.svg (within − between by layer, per block); with --out FILE.h5, \
        the arrays only.
        """

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, a Hugging Face gpt2/llama/qwen2 folder, or a `rulelens vae train` run).")
        public var checkpoint: InputPath
        @Option(help: "Labelled examples: a JSONL file, or a `rulelens data generate` folder (its --part).")
        public var data: InputPath
        @Option(help: "Part of a data folder: train or test.")
        public var part: DataPart = .test
        @Option(help: "Example field holding the rule: rule, rule_id, a or b.")
        public var label: NTKLabel = .rule
        @Option(parsing: .unconditional, help: "At most this many examples per rule (seeded draw).")
        public var maxPerRule: Int = 32
        @Option(help: "Loss positions: target or all.")
        public var lossOn: LossOn = .target
        @Option(parsing: .unconditional, help: "Seed of the example draw.")
        public var seed: UInt64 = 0
        @Option(help: "Folder for ntk.h5 and ntk.svg (created; existing files are kept unless --force), or a FILE.h5 for the arrays alone.")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if maxPerRule < 1 { throw ValidationError("--max-per-rule is \(maxPerRule); pass a positive number, e.g. --max-per-rule 32") }
            if part == .all { throw ValidationError("--part all is not available for probe ntk; pass --part train or --part test") }
        }
    }

    public struct Result: Encodable {
        public var json: [String: JSONValue]
        public var table: String
        public func encode(to encoder: Encoder) throws { try json.encode(to: encoder) }
    }

    public static func quick(_ o: inout QuickOptions) { o.cap("max-per-rule", 4) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        var data = a.data.path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue {
            data = (data as NSString).appendingPathComponent(a.part.rawValue + ".jsonl")
        }
        let target = try OutputTarget(a.out, file: "ntk.h5", picture: "ntk.svg")
        var n = NTKOptions(checkpoint: a.checkpoint.path, data: data)
        n.progress = ctx.progress
        n.label = a.label.rawValue; n.maxPerRule = a.maxPerRule; n.lossOn = a.lossOn; n.seed = a.seed
        n.out = target.file; n.plot = target.picture; n.overwrite = a.runtime.force
        let report = try ProbeJob.ntk(n)
        var json = report.json
        var byKind: [String: [String: [Double]]] = [:]
        var ratios: [Double] = [], diffs: [Double] = []
        for b in json["blocks"] as? [[String: Any]] ?? [] {
            guard let kind = b["kind"] as? String else { continue }
            for key in ["within", "between", "ratio", "difference", "alignment"] {
                if let v = ProbeVerb.number(b[key] as Any) { byKind[kind, default: [:]][key, default: []].append(v) }
            }
            if let r = ProbeVerb.number(b["ratio"] as Any), r.isFinite { ratios.append(r) }
            if let d = ProbeVerb.number(b["difference"] as Any) { diffs.append(d) }
        }
        json["by_kind"] = byKind
        json["mean_ratio"] = ratios.isEmpty ? NSNull() : ratios.reduce(0, +) / Double(ratios.count)
        json["mean_difference"] = diffs.isEmpty ? NSNull() : diffs.reduce(0, +) / Double(diffs.count)
        let value = try JSONValue(any: json)
        guard case .object(let object) = value else { throw RuleLensError("probe ntk gave no JSON object", fix: "report this as a bug") }
        let (figures, files) = target.outcome(report.written) { _ in "Gradient similarity within − between rules" }
        ctx.log(report.table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return VerbOutcome(Result(json: object, table: report.table), figures: figures, files: files)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        var lines = result.table.components(separatedBy: "\n")
        if let out = a.out { lines.append("wrote into \(out)") }
        return lines
    }
}
