import Foundation
import RuleLensJobs

/// `probe`: an analysis of a dump (as `rulelens probe pca|separability|linear|cka`). Besides the probe's own JSON,
/// results hold each metric per layer grouped by site kind (`by_kind.hook_mlp_out.knn_accuracy` = [layer 0, 1, …])
/// and by component (`by_component.ffn.silhouette`), so expectations can set FFN against attention.
public enum ProbeStep: RunStep {
    public static let kind = "probe"
    public static let summary = "Probe a dump: pca, separability, linear (with control task) or cka, per site; metrics grouped by site kind and component."
    public static let options: [StepOption] = [
        .init("analysis", .choice(["pca", "separability", "linear", "cka"]), "which analysis", required: true),
        .init("file", .path, "the dump (e.g. ${dump}) or a relabelled copy", required: true),
        .init("site", .list, "hook sites or patterns", required: true),
        .init("label", .string, "label column (/meta/COLUMN)"),
        .init("position", .string, "last, answer, mean or an index (default last)"),
        .init("k", .int, "separability: neighbours for k-NN"),
        .init("sample", .int, "separability: silhouette sample size"),
        .init("clusters", .int, "separability: k-means clusters"),
        .init("C", .double, "linear: inverse L2 strength"),
        .init("folds", .int, "linear: folds"),
        .init("no-control", .bool, "linear: skip the control task"),
        .init("control-type", .string, "linear: column of the control task's input types"),
        .init("components", .int, "pca: components"),
        .init("plot-metric", .string, "metric drawn by the plot"),
        .init("seed", .int, "seed"),
    ]

    public static func quick(_ o: inout StepOptions) {
        o.cap("folds", 3, orSet: false)
        o.cap("sample", 200, orSet: false)
    }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        let analysis = (try? o.string("analysis")).flatMap { $0 } ?? "?"
        let sites = (((try? o.list("site")) ?? nil) ?? []).map { "--site " + StepOptions.quote($0) }.joined(separator: " ")
        return "rulelens probe \(analysis) --file \((try? o.string("file")).flatMap { $0 } ?? "?") \(sites) "
            + o.flags(["label", "position", "k", "sample", "clusters", "C", "folds", "no-control", "control-type", "components", "plot-metric", "seed"],
                      types: ["no-control": .bool])
            + " --plot \(dir)/plot.svg --out \(dir)/probe.h5"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        var p = ProbeOptions(file: try o.requiredString("file"), sites: try o.list("site") ?? [], label: try o.string("label"))
        if let pos = try o.string("position") { p.position = try PositionSelector(parsing: pos) }
        p.out = ctx.path("probe.h5")
        p.plot = ctx.path("plot.svg")
        p.overwrite = true
        p.seed = UInt64(max(0, try o.int("seed", default: 0)))
        if let v = try o.int("k") { p.neighbours = v }
        p.silhouetteSample = try o.int("sample")
        p.clusters = try o.int("clusters")
        if let v = try o.double("C") { p.C = v }
        if let v = try o.int("folds") { p.folds = v }
        p.noControl = try o.bool("no-control")
        p.controlType = try o.string("control-type")
        p.components = try o.int("components")
        if let m = try o.string("plot-metric") { p.plotMetric = m }
        let report: ProbeReport
        switch try o.requiredString("analysis") {
        case "pca": report = try ProbeJob.pca(p)
        case "separability": report = try ProbeJob.separability(p)
        case "linear": report = try ProbeJob.linear(p)
        default: report = try ProbeJob.cka(p)
        }
        var json = report.json
        if let sites = json["sites"] as? [[String: Any]] { json.merge(grouped(sites)) { a, _ in a } }
        let figures = report.written.filter { $0.hasSuffix(".svg") }.map { path -> StepFigure in
            let file = (path as NSString).lastPathComponent
            return StepFigure(title: "probe \(json["analysis"] ?? "") — \(file)", file: file)
        }
        let files = report.written.filter { !$0.hasSuffix(".svg") }.map { ($0 as NSString).lastPathComponent }
        ctx.log(report.table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return StepOutcome(results: RunValue(any: json), figures: figures, files: files)
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
                guard !RunValue.isBoolean(v), let n = v as? NSNumber, !["layer", "n", "d", "knn_k", "kmeans_clusters"].contains(k) else { continue }
                byKind[kindName, default: [:]][k, default: []].append(n.doubleValue)
                byComponent[component, default: [:]][k, default: []].append(n.doubleValue)
            }
        }
        return ["by_kind": byKind, "by_component": byComponent]
    }
}
