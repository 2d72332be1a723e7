import ArgumentParser
import Foundation
import RuleLensJobs
import RuleLensModel

/// `lens`: the logit lens and direct logit attribution at the last prompt position, per label.
public enum LensVerb: Verb {
    public static let commandPath = ["lens"]
    public static let abstract = "Logit lens (each resid_pre/resid_mid through ln_final and the unembedding) and direct logit attribution, per label."
    public static let discussion = """
        Loads every family (gpt2, llama, qwen2, a language VAE's decoder). Results add each layer's direct attribution \
        of the attention and of the MLP output (dla.attn, dla.mlp = [layer 0, 1, …], mean share of logit[answer] − \
        logit[best other]) and the lens's top-1 accuracy and p(answer) per residual stage (stage.0_mid.accuracy). With \
        --out DIR, writes DIR/lens.h5 (lens logits, probabilities, ranks, attributions), DIR/lens.svg and DIR/lens.dla.svg.
        """
    public static let stepOutput = "lens.h5"

    public struct Arguments: VerbArguments {
        @Option(help: "Checkpoint folder (a `rulelens train` run, or a Hugging Face gpt2/llama/qwen2 folder).")
        public var checkpoint: InputPath
        @OptionGroup public var source: DataSourceOptions
        @Option(help: "Part of a data folder or of --task's data.") public var part: DataPart = .test
        @Option(help: "Break results down by this column.") public var label: LabelColumn?
        @Option(parsing: .unconditional, help: "The first N examples only.") public var limit: Int?
        @Option(help: "Folder for lens.h5, lens.svg and lens.dla.svg (created; existing files are kept unless --force).")
        public var out: String?
        @OptionGroup(title: "Runtime") public var runtime: RuntimeOptions

        public init() {}

        public func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit is \(limit); pass a positive number of examples (or leave it out for all)") }
        }
    }

    public struct StageResult: Codable, Sendable {
        public var accuracy: Double?
        public var probability: Double?
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(accuracy, forKey: .accuracy); try c.encode(probability, forKey: .probability)
        }
    }

    public struct Result: Encodable {
        /// The lens report (stages, components, overall and per-label lens and attribution).
        public var report: [String: JSONValue]
        /// Per component kind (attn, mlp), each layer's direct logit attribution.
        public var dla: [String: [Double?]]
        /// Per residual stage (`0_pre`, `0_mid`, …), the lens's top-1 accuracy and p(answer).
        public var stage: [String: StageResult]
        public var table: String

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: ReportKey.self)
            try c.encode(report: report)
            try c.encode(dla, forKey: ReportKey("dla"))
            try c.encode(stage, forKey: ReportKey("stage"))
        }
    }

    public static func quick(_ o: inout QuickOptions) { o.cap("limit", 40) }

    public static func run(_ a: Arguments, _ ctx: VerbContext) throws -> VerbOutcome<Result> {
        try inOutFolder(a.out) { try run(a, ctx, inFolder: ()) }
    }

    static func run(_ a: Arguments, _ ctx: VerbContext, inFolder: Void) throws -> VerbOutcome<Result> {
        var l = LensOptions(checkpoint: a.checkpoint.path, data: try a.source.source())
        l.part = a.part; l.label = a.label?.rawValue; l.limit = a.limit
        if let out = a.out {
            l.out = try outputFile(out, "lens.h5", force: a.runtime.force)
            l.plot = try outputFile(out, "lens.svg", force: a.runtime.force)
        }
        l.force = a.runtime.force; l.quiet = !ctx.progress.isEnabled
        let report = try LensJob.run(l)
        let json = try JSONValue.report(report.json)
        let overall = json["overall"]
        let attribution = (overall?["dla"]?["attribution"]?.array ?? []).map(\.number)
        var dla: [String: [Double?]] = ["attn": [], "mlp": []]
        for (c, name) in (json["components"]?.array ?? []).compactMap(\.string).enumerated() where c < attribution.count {
            let parts = name.split(separator: " ")
            if parts.count == 2, parts[0].hasPrefix("L"), dla[String(parts[1])] != nil { dla[String(parts[1])]!.append(attribution[c]) }
        }
        let accuracy = (overall?["lens"]?["accuracy"]?.array ?? []).map(\.number)
        let probability = (overall?["lens"]?["probability"]?.array ?? []).map(\.number)
        var stage: [String: StageResult] = [:]
        for (s, name) in (json["stages"]?.array ?? []).compactMap(\.string).enumerated() where s < accuracy.count && s < probability.count {
            stage[name] = StageResult(accuracy: accuracy[s], probability: probability[s])
        }
        ctx.log(report.table.split(separator: "\n").prefix(16).map { "  " + $0 }.joined(separator: "\n"))
        var figures: [VerbFigure] = [], files: [String] = []
        for path in report.written {
            let file = (path as NSString).lastPathComponent
            if file.hasSuffix(".svg") {
                figures.append(VerbFigure(title: file.contains(".dla.") ? "Direct logit attribution per layer and component" : "Logit lens: p(answer) by residual stage",
                                          file: file))
            } else { files.append(file) }
        }
        return VerbOutcome(Result(report: json, dla: dla, stage: stage, table: report.table), figures: figures, files: files)
    }

    public static func lines(_ result: Result, _ a: Arguments) -> [String] {
        result.table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + (a.out.map { ["wrote into \($0)"] } ?? [])
    }
}
