import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics

extension AblationMethod: ExpressibleByArgument {}
extension AblationMetric: ExpressibleByArgument {}
extension PatchSite: ExpressibleByArgument {}

/// A column of the examples that results are broken down by.
public enum LabelColumn: String, CaseIterable, ExpressibleByArgument, Sendable {
    case rule, ruleId = "rule_id", a, b, answer, target, prompt
}

/// A component `ablate` ablates as a whole (heads: `--heads`).
public enum AblateComponent: String, CaseIterable, ExpressibleByArgument, Sendable {
    case attn, mlp
    var cell: AblationCell.Component { self == .attn ? .attn : .mlp }
}

/// Whose blocks `ablate` ablates.
public enum AblateStack: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// The model's own blocks (a language VAE's decoder).
    case decoder
    /// A language VAE's encoder.
    case encoder
}

/// `ablate`: each layer's attention and MLP output (and each head) ablated in turn, with bootstrap intervals, per label.
public enum AblateVerb: Verb {
    public static let commandPath = ["ablate"]
    public static let abstract = "Ablate each layer's attention / MLP output (and each head): accuracy, loss, logit difference with bootstrap intervals, per label."
    public static let discussion = """
        Loads every family (gpt2, llama, qwen2; a language VAE's decoder, or its encoder with --stack encoder). --seed \
        seeds the bootstrap, the resample donors and the separability probe's folds (and, with --task, the data). Results \
        add per component the change of each metric per layer (by_component.mlp.accuracy_change = [layer 0, 1, …]). \
        With --out DIR, writes DIR/ablate.h5 (per-example results and summaries) and DIR/ablate.svg (the heatmap of \
        --plot-metric's change).
        """
    public static let stepOutput = "ablate.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, a Hugging Face gpt2/llama/qwen2 folder, or a `rulelens vae train` run).")
        public var checkpoint: InputPath
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Part of a data folder or of --task's data.") public var part: DataPart = .test
        @Option(help: "Component to ablate (repeatable; heads: --heads).") public var components: [AblateComponent] = [.attn, .mlp]
        @Option(parsing: .unconditionalSingleValue, help: "Layer to ablate (repeatable; default: every layer).") public var layers: [Int] = []
        @Flag(help: "Also ablate each head (its hook_z slice).") public var heads = false
        @Option(help: "Whose blocks: decoder (the model's own) or encoder (a language VAE's encoder, with --separability-at latent.hook_mu).")
        public var stack: AblateStack = .decoder
        @Option(help: "zero, mean (mean over --mean-from at each position) or resample (another example's value, seeded).")
        public var method: AblationMethod = .zero
        @Option(help: "JSONL (or data folder) whose clean activations give the mean/resample values (default: the data), or an HDF5 dump of them (`rulelens dump --positions all` with the ablated sites).")
        public var meanFrom: InputPath?
        @Option(parsing: .unconditional, help: "Positions ablated: all, answer (the last prompt position) or K (K<0 counts back from the prompt's end).")
        public var positions: String = "all"
        @Option(help: "Break every result down by this column.") public var label: LabelColumn?
        @OptionGroup public var resampling: BootstrapOptions
        @Option(help: "Also measure the label's separability (silhouette, k-NN, linear probe) at this site in every run.")
        public var separabilityAt: String?
        @Option(help: "Metric whose change the heatmap (ablate.svg) draws.") public var plotMetric: AblationMetric = .accuracy
        @Option(help: "Folder for ablate.h5 (per-example results and summaries) and ablate.svg (created; existing files are kept unless --force).")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if components.isEmpty { throw ValidationError("no --components; pass --components attn and/or --components mlp") }
            if Set(components).count != components.count { throw ValidationError("--components names a component twice; name each once") }
            if layers.contains(where: { $0 < 0 }) { throw ValidationError("--layers has a negative layer; pass layers 0, 1, … (or leave it out for all)") }
            if meanFrom != nil && method == .zero { throw ValidationError("--mean-from was given with --method zero; drop --mean-from, or pass --method mean or resample") }
            do { _ = try AblateOptions.positions(positions) } catch let e as RuleLensError {
                throw ValidationError("--positions \(positions): \(e.problem); \(e.fix)")
            }
        }
    }

    public struct Result: Encodable {
        /// The ablation report (checkpoint, method, cells with their effects and intervals, per label).
        public var report: [String: JSONValue]
        /// Per component (attn, mlp), per metric, the change per layer: `mlp.accuracy_change` = [layer 0, 1, …].
        public var byComponent: [String: [String: [Double?]]]
        /// The report's table (what the command prints; not part of the JSON).
        public var table: String

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: ReportKey.self)
            try c.encode(report: report)
            try c.encode(byComponent, forKey: ReportKey("by_component"))
        }
    }

    public static func quick(_ o: inout QuickOptions) { o.cap("bootstrap", 50) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        try inOutFolder(a.out) { try run(a, ctx, inFolder: ()) }
    }

    static func run(_ a: Arguments, _ ctx: VerbContext, inFolder: Void) throws -> VerbOutcome<Result> {
        var o = AblateOptions(checkpoint: a.checkpoint.path, data: try a.source.source())
        o.part = a.part
        o.components = a.components.map(\.cell)
        o.layers = a.layers.isEmpty ? nil : a.layers
        o.heads = a.heads
        o.stack = try AblateOptions.stackPrefix(a.stack.rawValue)
        o.method = a.method
        o.meanFrom = a.meanFrom?.path
        o.positions = try AblateOptions.positions(a.positions)
        o.label = a.label?.rawValue
        o.bootstrap = a.resampling.bootstrap
        o.seed = a.source.generated.seed ?? 0
        o.separabilityAt = a.separabilityAt
        o.plotMetric = a.plotMetric
        if let out = a.out {
            o.out = try outputFile(out, "ablate.h5", force: a.runtime.force)
            o.plot = try outputFile(out, "ablate.svg", force: a.runtime.force)
        }
        o.force = a.runtime.force; o.quiet = !ctx.progress.isEnabled
        let report = try AblateJob.run(o)
        let json = try JSONValue.report(report.json)
        var byComponent: [String: [String: [Double?]]] = [:]
        for cell in json["overall"]?["cells"]?.array ?? [] where cell["head"] == nil || cell["head"] == .null {
            guard let component = cell["component"]?.string, case .object(let effects)? = cell["effects"] else { continue }
            for (metric, e) in effects.sorted(by: { $0.key < $1.key }) {
                byComponent[component, default: [:]][metric + "_change", default: []].append(e["change"]?["value"]?.number)
            }
        }
        ctx.log(report.table.split(separator: "\n").prefix(14).map { "  " + $0 }.joined(separator: "\n"))
        let written = Set(report.written.map { ($0 as NSString).lastPathComponent })
        return VerbOutcome(Result(report: json, byComponent: byComponent, table: report.table),
                           figures: written.contains("ablate.svg") ? [VerbFigure(title: "Ablation effects", file: "ablate.svg")] : [],
                           files: written.contains("ablate.h5") ? ["ablate.h5"] : [])
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        result.table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + (a.out.map { ["wrote into \($0)"] } ?? [])
    }
}

