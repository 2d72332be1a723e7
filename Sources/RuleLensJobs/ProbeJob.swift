import Foundation
import RuleLensAnalysis
import RuleLensModel
import RuleLensNumerics
import RuleLensReport
import RuleLensStore

/// Options shared by the `rulelens probe` analyses of an activation file.
public struct ProbeOptions {
    /// Where the per-site progress goes (a disabled line prints nothing).
    public var progress = ProgressLine()
    /// The HDF5 file (a `rulelens dump`, or any file with float datasets).
    public var file: String
    /// Site names or `*` patterns (a pattern runs a sweep).
    public var sites: [String]
    /// /meta label column (or a dataset path starting with "/").
    public var label: String?
    public var position: PositionSelector = .last
    /// Whether the caller chose `position` (then a site stored with one position per example, which has nothing
    /// to choose from, is an error rather than silently ignoring it).
    public var positionGiven = false
    public var out: String?
    public var plot: String?
    /// Replace existing --out / --plot files.
    public var overwrite = false
    public var seed: UInt64 = 0

    // pca
    public var components: Int?
    public var method: PCA.Method = .covariance
    public var chunkRows = 4096
    // separability
    public var neighbours = 5
    public var silhouetteSample: Int?
    public var clusters: Int?
    public var plotMetric = "silhouette"
    // linear
    public var C = 1.0
    /// A regularisation path: when not empty, the linear probe runs every C here in order (each warm-started from
    /// the previous one's optimum) and `C` is not used.
    public var Cs: [Double] = []
    public var folds = 5
    public var contiguousFolds = false
    /// Column whose distinct values are the control task's input types (default: prompt, when stored).
    public var controlType: String?
    public var noControl = false

    public init(file: String, sites: [String], label: String? = nil) {
        self.file = file; self.sites = sites; self.label = label
    }

    var foldAssignment: FoldAssignment { contiguousFolds ? .contiguous(folds) : .shuffled(folds, seed: seed) }
}

/// The `rulelens probe` analyses as library calls: each reads the sites and label, runs the measurement per site
/// (ordered by layer), writes `--out`/`--plot` if asked, and returns the table and JSON.
public enum ProbeJob {
    static func requireLabel(_ o: ProbeOptions, _ what: String) throws -> String {
        guard let label = o.label else {
            throw RuleLensError("probe \(what) needs a label column", fix: "pass --label COLUMN (e.g. --label rule)")
        }
        return label
    }

    /// Refusals change nothing and cost nothing: an existing --out or --plot is refused before any work.
    static func refuseExistingOutputs(out: String?, plot: String?, overwrite: Bool) throws {
        guard !overwrite else { return }
        for (option, path) in [("--out", out), ("--plot", plot)] {
            if let path, FileManager.default.fileExists(atPath: path) {
                throw RuleLensError("\(path) already exists", fix: "choose another \(option) path or pass --force to replace it")
            }
        }
    }

    /// The probes' progress line: rewritten in place on a terminal, otherwise throttled like every progress line
    /// (a plain line at most every 2 s).

    /// With an explicit `--position`, every site must have a position axis to choose from.
    static func checkPosition(_ sites: [String], in file: ActivationFile, _ o: ProbeOptions) throws {
        guard o.positionGiven else { return }
        let single = try sites.filter { try !file.hasPositionAxis($0) }
        if !single.isEmpty {
            throw RuleLensError("--position \(positionText(o.position)) was given, but \(single.prefix(3).joined(separator: ", "))\(single.count > 3 ? " and \(single.count - 3) more" : "") hold\(single.count == 1 ? "s" : "") one position per example (dumped with --positions last/answer/K, or [N, d] data), so there is no position to choose",
                                fix: "drop --position for these sites, or dump them again with --positions all")
        }
    }

    /// Reads each site's [N, d] matrix in turn, with a progress line and ETA, and checks it has one row per label.
    /// `memory(n, d)` is what the analysis of one [n, d] site needs: checked for every site before any is read.
    static func forEachSite(_ sites: [String], in file: ActivationFile, _ o: ProbeOptions, what: String, labelName: String,
                            labelCount: Int, memory: (Int, Int) -> MemoryEstimate, _ body: (String, FloatMatrix) throws -> Void) throws {
        try checkPosition(sites, in: file, o)
        for site in sites {
            let source = try file.rowSource(site, position: o.position)
            try requireMemory(memory(source.rows, source.cols), what: "\(what) of \(site) [\(source.rows), \(source.cols)]")
        }
        let started = Date()
        for (i, site) in sites.enumerated() {
            let eta = i == 0 ? "" : String(format: ", ETA %.0fs", Date().timeIntervalSince(started) / Double(i) * Double(sites.count - i))
            o.progress.update("\(what) \(i + 1)/\(sites.count) \(site)\(eta)")
            let x = try file.matrix(site, position: o.position)
            guard x.rows == labelCount else {
                throw RuleLensError("\(site) has \(x.rows) examples but label \(labelName) has \(labelCount)", fix: "use a label column from the same dump")
            }
            try body(site, x)
        }
    }

    /// Refuses an analysis whose matrices would not fit in memory, before anything is read.
    static func requireMemory(_ estimate: MemoryEstimate, what: String) throws {
        try estimate.require(what, fix: "analyse fewer dimensions: project the site first (`rulelens probe pca --components 50 --out pca.h5` "
                             + "stores the projections, which probe reads), or dump a narrower site or fewer examples (--limit)")
    }

    /// Layer column text: "embed", a block index, "final" (ln_final, unembed), "-" for non-hook datasets.
    static func layerText(_ site: String) -> String {
        let layer = SiteOrder.layer(of: site)
        if layer == -1 { return "embed" }
        if layer != Int.max { return String(layer) }
        return site.hasPrefix("ln_final") || site.hasPrefix("unembed") ? "final" : "-"
    }

    // MARK: PCA

    /// PCA of each site (streamed from the file in `chunkRows` blocks with the covariance method).
    public static func pca(_ o: ProbeOptions) throws -> ProbeReport {
        try refuseExistingOutputs(out: o.out, plot: o.plot, overwrite: o.overwrite)
        let file = try ActivationFile(o.file)
        let sites = try file.resolveSites(o.sites)
        let labels = try o.label.map { try file.labels($0) }
        try checkPosition(sites, in: file, o)
        for site in sites {
            let source = try file.rowSource(site, position: o.position)
            let (n, d) = (source.rows, source.cols)
            var e = MemoryEstimate.analysis(rows: o.method == .svd ? n : min(n, max(o.chunkRows, 1)), cols: d, squareOf: d, label: "covariance")
            if o.method == .svd { e.parts.append(("SVD factors", n.multipliedSaturating(d).multipliedSaturating(8 * 2))) }
            try requireMemory(e, what: "PCA of \(site) [\(n), \(d)]")
        }
        var table = TextTable(["site", "n", "d", "PC1", "PC2", "PC3", "top-k cum."])
        var results: [[String: Any]] = []
        var fits: [(String, PCA, FloatMatrix)] = []
        for (i, site) in sites.enumerated() {
            o.progress.update("pca \(i + 1)/\(sites.count) \(site)")
            let pca: PCA
            let source = try file.rowSource(site, position: o.position)
            if o.method == .svd {
                pca = try PCA.fit(try file.matrix(site, position: o.position), components: o.components ?? min(10, source.cols), method: .svd, name: site)
            } else {
                pca = try PCA.fit(streaming: source, components: o.components ?? min(10, source.cols), chunkRows: o.chunkRows, name: site)
            }
            let projections = try project(pca, source, chunkRows: o.chunkRows)
            let r = pca.explainedVarianceRatio
            table.add([site, String(pca.sampleCount), String(source.cols), fmt(r.count > 0 ? r[0] : nil), fmt(r.count > 1 ? r[1] : nil),
                       fmt(r.count > 2 ? r[2] : nil), fmt(r.reduce(0, +))])
            results.append(["site": site, "n": pca.sampleCount, "d": source.cols, "explained_variance": pca.explainedVariance,
                            "explained_variance_ratio": r, "total_variance": pca.totalVariance,
                            "components": (0..<pca.componentCount).map { c in (0..<source.cols).map { Double(pca.components[c, $0]) } }])
            fits.append((site, pca, projections))
        }
        o.progress.clear()
        var report = ProbeReport(table: table.render(), json: ["analysis": "pca", "file": o.file, "position": positionText(o.position),
                                                                "method": o.method.rawValue, "sites": results])
        if let out = o.out {
            try writeResultsHDF5(out, overwrite: o.overwrite) { h5 in
                try h5.writeStrings("sites", sites)
                for (site, pca, proj) in fits {
                    let g = try h5.createGroup("pca/" + site)
                    try g.writeMatrix("components", pca.components)
                    try g.writeDoubles("explained_variance", pca.explainedVariance, shape: [pca.componentCount])
                    try g.writeDoubles("explained_variance_ratio", pca.explainedVarianceRatio, shape: [pca.componentCount])
                    try g.writeDoubles("mean", pca.mean.map(Double.init), shape: [pca.mean.count])
                    try g.writeMatrix("projections", proj)
                }
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            for (site, pca, proj) in fits where pca.componentCount >= 1 {
                let path = fits.count == 1 ? plot : suffixed(plot, site)
                let r = pca.explainedVarianceRatio
                let points = (0..<proj.rows).map { (Double(proj[$0, 0]), pca.componentCount > 1 ? Double(proj[$0, 1]) : 0) }
                let chart = ScatterPlot(title: "PCA of \(site) (position \(positionText(o.position)))",
                                        xLabel: String(format: "PC1 (%.1f%% of variance)", 100 * r[0]),
                                        yLabel: r.count > 1 ? String(format: "PC2 (%.1f%% of variance)", 100 * r[1]) : "PC2",
                                        points: points, categories: labels?.ids, categoryNames: labels?.names ?? [])
                try writeTextAtomically(chart.render(), to: path, overwrite: o.overwrite)
                report.written.append(path)
            }
        }
        return report
    }

    /// Projections of every row of `source` onto the components, read in blocks.
    static func project(_ pca: PCA, _ source: RowChunkSource, chunkRows: Int) throws -> FloatMatrix {
        let out = FloatMatrix(rows: source.rows, cols: pca.componentCount)
        var start = 0
        while start < source.rows {
            let end = min(source.rows, start + max(chunkRows, 1))
            let block = FloatMatrix(rows: end - start, cols: source.cols)
            try source.readRows(start..<end, into: block.ptr)
            let p = pca.transform(block)
            (out.ptr + start * out.cols).update(from: p.ptr, count: p.count)
            start = end
        }
        return out
    }

    // MARK: Separability

    /// Separability of the label at each site: silhouette, Davies–Bouldin, Calinski–Harabasz, Fisher ratio,
    /// leave-one-out k-NN accuracy, and NMI between k-means clusters (k = number of classes) and the label.
    public static func separability(_ o: ProbeOptions) throws -> ProbeReport {
        let labelName = try requireLabel(o, "separability")
        try refuseExistingOutputs(out: o.out, plot: o.plot, overwrite: o.overwrite)
        let file = try ActivationFile(o.file)
        let sites = try file.resolveSites(o.sites)
        let labels = try file.labels(labelName)
        try Analysis.requireClasses(labels, "label \(labelName)", maxClassesBelowN: true)
        var table = TextTable(["layer", "component", "site", "silhouette", "davies-bouldin", "calinski-harabasz", "fisher", "knn-acc", "kmeans-nmi"])
        var results: [[String: Any]] = []
        var assignments: [(String, [Int])] = []
        var illConditioned: [String] = []
        // Fisher's ratio builds the d × d within-class scatter (and its eigenvectors) from a double copy of the data;
        // silhouette and k-NN read distances in blocks of 256 rows.
        let memory = { (n: Int, d: Int) -> MemoryEstimate in
            var e = MemoryEstimate.analysis(rows: n, cols: d, squareOf: d, label: "within-class scatter")
            e.parts.append(("class-centred copy in double and distance blocks", n.multipliedSaturating(d).multipliedSaturating(8)
                .addingSaturating(n.multipliedSaturating(256 * 4))))
            return e
        }
        try forEachSite(sites, in: file, o, what: "separability", labelName: labelName, labelCount: labels.count, memory: memory) { site, x in
            let sil = try Analysis.silhouette(x, labels, sampleSize: o.silhouetteSample, seed: o.seed, name: site)
            let db = try Analysis.daviesBouldin(x, labels, name: site)
            let ch = try Analysis.calinskiHarabasz(x, labels, name: site)
            let fisher = try Analysis.fisherRatio(x, labels, name: site)
            guard o.neighbours < x.rows else {
                throw RuleLensError("--k \(o.neighbours) needs more than \(o.neighbours) examples, but \(site) has \(x.rows) (with k ≥ n every vote is the whole data set: the majority rate)",
                                    fix: "pass --k \(max(1, min(5, x.rows - 1))) or another value below \(x.rows)")
            }
            let knn = try Analysis.knnAccuracy(x, labels, k: o.neighbours, name: site)
            let km = try KMeans.fit(x, k: o.clusters ?? labels.classCount, seed: o.seed, name: site)
            let nmi = Analysis.normalizedMutualInformation(labels.ids, km.assignments)
            let layer = SiteOrder.layer(of: site)
            table.add([layerText(site), SiteOrder.component(of: site), site,
                       fmt(sil), fmt(db), fmt(ch, 2), fmt(fisher.value, 3) + (fisher.isIllConditioned ? "!" : ""), fmt(knn), fmt(nmi)])
            if fisher.isIllConditioned { illConditioned.append(site) }
            results.append(["site": site, "layer": layer == Int.max ? -2 : layer, "component": SiteOrder.component(of: site),
                            "n": x.rows, "d": x.cols, "silhouette": sil, "davies_bouldin": db, "calinski_harabasz": ch,
                            "fisher_ratio": fisher.value, "fisher_ridge": fisher.ridge, "knn_accuracy": knn, "knn_k": o.neighbours, "fisher_condition": fisher.condition, "fisher_ill_conditioned": fisher.isIllConditioned,
                            "kmeans_nmi": nmi, "kmeans_inertia": km.inertia, "kmeans_clusters": km.centres.rows,
                            "silhouette_sample": o.silhouetteSample ?? NSNull()])
            assignments.append((site, km.assignments))
        }
        o.progress.clear()
        var tableText = table.render()
        if !illConditioned.isEmpty {
            tableText += "\nfisher !: S_w's condition number exceeds \(String(format: "%.0e", Analysis.FisherRatio.illConditioned)) at \(illConditioned.count) site\(illConditioned.count == 1 ? "" : "s")"
                + " (fisher_condition in --json): the ratio is dominated by near-null directions of the within-class scatter (d close to n, or constant columns) and is not comparable across sites"
        }
        var report = ProbeReport(table: tableText, json: ["analysis": "separability", "file": o.file, "label": labelName,
                                                                "classes": labels.names, "position": positionText(o.position), "sites": results])
        if let out = o.out {
            try writeResultsHDF5(out, overwrite: o.overwrite) { h5 in
                try h5.writeStrings("sites", sites)
                try h5.writeStrings("classes", labels.names)
                for key in ["silhouette", "davies_bouldin", "calinski_harabasz", "fisher_ratio", "fisher_ridge", "knn_accuracy", "kmeans_nmi"] {
                    try h5.writeDoubles("separability/" + key, results.map { $0[key] as! Double }, shape: [results.count])
                }
                for (site, a) in assignments { try h5.writeInts("kmeans/" + site, a) }
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            try writeTextAtomically(layerChart(results, metric: o.plotMetric, label: labelName), to: plot, overwrite: o.overwrite)
            report.written.append(plot)
        }
        return report
    }

    /// Line chart of one metric by layer, one line per kind of site (attention sites in warm colours, FFN in cool ones).
    static func layerChart(_ results: [[String: Any]], metric: String, label: String) throws -> String {
        let key = metric.replacingOccurrences(of: "-", with: "_")
        guard results.first?[key] is Double else {
            throw RuleLensError("--plot-metric \(metric) is not one of the measured metrics",
                                fix: "use silhouette, davies_bouldin, calinski_harabasz, fisher_ratio, knn_accuracy, kmeans_nmi, accuracy or selectivity")
        }
        var bySuffix: [String: [(Double, Double)]] = [:]
        var kindOf: [String: String] = [:]
        for r in results {
            let site = r["site"] as! String, layer = r["layer"] as! Int
            guard layer >= 0, let v = r[key] as? Double else { continue }
            let suffix = site.split(separator: ".").dropFirst(2).joined(separator: ".")
            bySuffix[suffix, default: []].append((Double(layer), v))
            kindOf[suffix] = SiteOrder.component(of: site)
        }
        let warm = ["#e15759", "#f28e2b", "#edc948", "#ff9da7", "#9c755f"], cool = ["#4e79a7", "#59a14f", "#76b7b2", "#b07aa1", "#1f3b73"]
        var counts = ["attention": 0, "ffn": 0, "residual": 0]
        let series = bySuffix.keys.sorted { (SiteOrder.precedes("blocks.0." + $0, "blocks.0." + $1)) }.map { suffix -> LineChart.Series in
            let kind = kindOf[suffix]!
            let i = counts[kind]!; counts[kind] = i + 1
            let color = kind == "attention" ? warm[i % warm.count] : (kind == "ffn" ? cool[i % cool.count] : ["#555555", "#999999", "#bab0ac"][i % 3])
            return LineChart.Series(name: "\(suffix) (\(kind))", points: bySuffix[suffix]!, color: color)
        }
        return LineChart(title: "\(metric) of \(label) by layer: attention vs FFN", xLabel: "layer", yLabel: metric, series: series).render()
    }

    // MARK: Linear probe

    /// Cross-validated linear-probe accuracy per site, with the control task and selectivity.
    public static func linear(_ o: ProbeOptions) throws -> ProbeReport {
        let labelName = try requireLabel(o, "linear")
        try refuseExistingOutputs(out: o.out, plot: o.plot, overwrite: o.overwrite)
        let file = try ActivationFile(o.file)
        let sites = try file.resolveSites(o.sites)
        let labels = try file.labels(labelName)
        try Analysis.requireClasses(labels, "label \(labelName)", maxClassesBelowN: true)
        var control: Labels? = nil, controlColumn: String? = nil
        if !o.noControl {
            let columns = try file.labelColumns()
            controlColumn = o.controlType ?? (columns.contains("prompt") ? "prompt" : nil)
            if let c = controlColumn {
                let types = try file.stringColumn(c)
                guard types.count == labels.count else {
                    throw RuleLensError("control-type column \(c) has \(types.count) entries, label \(labelName) has \(labels.count)", fix: "use columns of the same dump")
                }
                control = Analysis.controlLabels(types: types, labels: labels, seed: o.seed)
            }
        }
        let Cs = o.Cs.isEmpty ? [o.C] : o.Cs
        let path = Cs.count > 1
        var table = TextTable(["layer", "component", "site"] + (path ? ["C"] : [])
                              + ["accuracy", "control", "selectivity", "majority", "converged", "iterations", "max|grad|"])
        var results: [[String: Any]] = []
        let memory = { (n: Int, d: Int) -> MemoryEstimate in
            var e = MemoryEstimate.analysis(rows: n, cols: d)
            e.parts.append(("standardised copy and fold data", n.multipliedSaturating(d).multipliedSaturating(8)))
            e.parts.append(("weights and gradients", d.multipliedSaturating(labels.classCount).multipliedSaturating(8 * 8)))
            return e
        }
        try forEachSite(sites, in: file, o, what: "linear probe", labelName: labelName, labelCount: labels.count, memory: memory) { site, x in
            let rs = try Analysis.linearProbePath(x, labels, Cs: Cs, folds: o.foldAssignment, controlLabels: control, name: site)
            let layer = SiteOrder.layer(of: site)
            func fields(_ r: LinearProbeResult) -> [String: Any] {
                ["C": r.C, "accuracy": r.accuracy, "fold_accuracies": r.foldAccuracies, "fold_correct": r.foldCorrect,
                 "fold_sizes": r.foldSizes, "control_accuracy": r.controlAccuracy ?? NSNull(), "selectivity": r.selectivity ?? NSNull(),
                 "majority_baseline": r.majorityBaseline, "converged": r.converged, "fold_iterations": r.foldIterations,
                 "control_iterations": r.controlIterations, "gradient_norm": r.gradientNorm]
            }
            for r in rs {
                let iterations = (r.foldIterations + r.controlIterations).map(String.init).joined(separator: "/")
                table.add([layerText(site), SiteOrder.component(of: site), site] + (path ? [fmt(r.C)] : [])
                          + [fmt(r.accuracy), fmt(r.controlAccuracy), fmt(r.selectivity), fmt(r.majorityBaseline),
                             r.converged ? "yes" : "no", iterations, String(format: "%.1e", r.gradientNorm)])
            }
            // The site's headline numbers: the one C, or on a path the C with the best accuracy (first of ties).
            let best = rs.enumerated().max { a, b in a.element.accuracy < b.element.accuracy || (a.element.accuracy == b.element.accuracy && a.offset > b.offset) }!.element
            var entry = fields(best)
            entry["site"] = site; entry["layer"] = layer == Int.max ? -2 : layer; entry["component"] = SiteOrder.component(of: site)
            entry["n"] = x.rows; entry["d"] = x.cols
            if path { entry["path"] = rs.map(fields) }
            results.append(entry)
        }
        o.progress.clear()
        var report = ProbeReport(table: table.render(), json: ["analysis": "linear", "file": o.file, "label": labelName, "C": path ? Cs : o.C,
                                                                "folds": o.folds, "fold_mode": o.contiguousFolds ? "contiguous" : "shuffled",
                                                                "seed": Int(o.seed), "control_type": controlColumn ?? NSNull(),
                                                                "position": positionText(o.position), "sites": results])
        if controlColumn == nil { report.table += "\n(no control task: the file has no prompt column; pass --control-type COLUMN)" }
        if let out = o.out {
            try writeResultsHDF5(out, overwrite: o.overwrite) { h5 in
                try h5.writeStrings("sites", sites)
                try h5.writeDoubles("linear/accuracy", results.map { $0["accuracy"] as! Double }, shape: [results.count])
                try h5.writeDoubles("linear/control_accuracy", results.map { ($0["control_accuracy"] as? Double) ?? .nan }, shape: [results.count])
                try h5.writeDoubles("linear/selectivity", results.map { ($0["selectivity"] as? Double) ?? .nan }, shape: [results.count])
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            let metric = o.plotMetric == "silhouette" ? "accuracy" : o.plotMetric
            try writeTextAtomically(layerChart(results, metric: metric, label: labelName), to: plot, overwrite: o.overwrite)
            report.written.append(plot)
        }
        return report
    }

    // MARK: CKA

    /// Linear CKA between every pair of the resolved sites (two sites: one number).
    public static func cka(_ o: ProbeOptions) throws -> ProbeReport {
        try refuseExistingOutputs(out: o.out, plot: o.plot, overwrite: o.overwrite)
        let file = try ActivationFile(o.file)
        let sites = try file.resolveSites(o.sites)
        guard sites.count >= 2 else {
            throw RuleLensError("CKA compares sites, but \(o.sites.joined(separator: " ")) resolved to only \(sites.first ?? "nothing")",
                                fix: "pass two --site options or a pattern matching several sites (e.g. --site 'blocks.*.hook_resid_post')")
        }
        try checkPosition(sites, in: file, o)
        var estimate = MemoryEstimate()
        for site in sites {   // every site is held at once, with its n × n centred kernel
            let source = try file.rowSource(site, position: o.position)
            estimate.parts += MemoryEstimate.analysis(rows: source.rows, cols: source.cols, squareOf: source.rows, copies: 1, label: "\(site) kernel").parts
        }
        try requireMemory(estimate, what: "CKA of \(sites.count) sites")
        var matrices: [FloatMatrix] = []
        for (i, site) in sites.enumerated() {
            o.progress.update("cka: reading \(i + 1)/\(sites.count) \(site)")
            matrices.append(try file.matrix(site, position: o.position))
        }
        o.progress.update("cka: \(sites.count * (sites.count - 1) / 2) pairs")
        let matrix = try Analysis.ckaMatrix(matrices, names: sites)
        o.progress.clear()
        var table = TextTable(["site"] + sites.indices.map { "[\($0)]" })
        for (i, site) in sites.enumerated() { table.add(["[\(i)] " + site] + matrix[i].map { fmt($0, 3) }) }
        var report = ProbeReport(table: table.render(), json: ["analysis": "cka", "file": o.file, "position": positionText(o.position),
                                                                "sites": sites, "matrix": matrix])
        if sites.count == 2 { report.json["cka"] = matrix[0][1] }
        if let out = o.out {
            try writeResultsHDF5(out, overwrite: o.overwrite) { h5 in
                try h5.writeStrings("sites", sites)
                try h5.writeDoubles("cka", matrix.flatMap { $0 }, shape: [sites.count, sites.count])
            }
            report.written.append(out)
        }
        if let plot = o.plot {
            var heatmap = Heatmap(values: matrix, rowLabels: sites, colLabels: sites)
            heatmap.title = "Linear CKA (position \(positionText(o.position)))"
            heatmap.range = 0...1
            heatmap.colorBarLabel = "CKA"
            heatmap.annotate = sites.count <= 12
            heatmap.maxTicks = max(12, sites.count)
            let svg = heatmap.render()
            try writeTextAtomically(svg, to: plot, overwrite: o.overwrite)
            report.written.append(plot)
        }
        return report
    }
}
