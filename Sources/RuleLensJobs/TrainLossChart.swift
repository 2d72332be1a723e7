import Foundation
import RuleLensNumerics
import RuleLensReport
import RuleLensModel

/// The training loss curve of a run (its train_log.csv) as an SVG line chart, for `train` and `vae train`.
public enum TrainLossChart {
    /// Writes the log10 loss curve of the CSV log `logFile` (step, loss, …) to `svgPath`; false (nothing written)
    /// when the log is missing or has fewer than two finite points.
    @discardableResult
    public static func write(logFile: String, to svgPath: String) throws -> Bool {
        guard let text = try? String(contentsOfFile: logFile, encoding: .utf8) else { return false }
        var points: [(Double, Double)] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            if f.count >= 2, let s = Double(f[0]), let l = Double(f[1]), l.isFinite { points.append((s, log10(max(l, 1e-6)))) }
        }
        guard points.count > 1 else { return false }
        let stride = max(1, points.count / 300)
        let thinned = points.enumerated().filter { $0.offset % stride == 0 || $0.offset == points.count - 1 }.map(\.element)
        let svg = LineChart(title: "Training loss", xLabel: "step", yLabel: "log10 loss",
                            series: [.init(name: "train loss", points: thinned, color: "#4e79a7")]).render()
        try AtomicFile.write(Data(svg.utf8), to: svgPath)
        return true
    }
}
