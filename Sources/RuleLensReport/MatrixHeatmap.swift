import Foundation

/// A labelled square-cell heatmap of a small matrix (e.g. layer-by-layer CKA), values written in the cells.
public struct MatrixHeatmap {
    public var title: String
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// values[row][column]
    public var values: [[Double]]
    /// Colour scale limits (viridis from low to high).
    public var range: (Double, Double)

    public init(title: String, rowLabels: [String], columnLabels: [String], values: [[Double]], range: (Double, Double)? = nil) {
        self.title = title; self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.values = values
        let flat = values.flatMap { $0 }.filter(\.isFinite)
        self.range = range ?? ((flat.min() ?? 0), max((flat.max() ?? 1), (flat.min() ?? 0) + 1e-12))
    }

    public func render() -> String {
        let rows = values.count, cols = values.first?.count ?? 0
        let cell = max(14, min(48, 640 / Double(max(rows, cols, 1))))
        let labelSpace = Double((rowLabels + columnLabels).map(\.count).max() ?? 0) * 6.2 + 10
        let left = labelSpace, top = 40 + labelSpace
        let width = left + cell * Double(cols) + 90, height = top + cell * Double(rows) + 20
        var svg = SVGDocument(width: width, height: height)
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: .middle, bold: true)
        let (lo, hi) = range
        for r in 0..<rows {
            svg.text(rowLabels[r], x: left - 6, y: top + (Double(r) + 0.5) * cell + 4, size: 10, anchor: .end)
            for c in 0..<cols {
                let v = values[r][c], t = (v - lo) / (hi - lo)
                svg.rect(x: left + Double(c) * cell, y: top + Double(r) * cell, width: cell, height: cell,
                         fill: v.isFinite ? ColorMap.viridis(t) : "#cccccc", title: "\(rowLabels[r]) × \(columnLabels[c]): \(v)")
                if cell >= 30 {
                    svg.text(String(format: "%.2f", v), x: left + (Double(c) + 0.5) * cell, y: top + (Double(r) + 0.5) * cell + 4,
                             size: 9, anchor: .middle, fill: t > 0.6 ? "#222" : "#fff")
                }
            }
        }
        for c in 0..<cols {
            let x = left + (Double(c) + 0.5) * cell
            svg.text(columnLabels[c], x: x, y: top - 6, size: 10, anchor: .start, rotate: -60)
        }
        // colour bar
        let barX = left + cell * Double(cols) + 20, barH = cell * Double(rows)
        for i in 0..<50 {
            let t = 1 - Double(i) / 49
            svg.rect(x: barX, y: top + Double(i) * barH / 50, width: 14, height: barH / 50 + 0.5, fill: ColorMap.viridis(t))
        }
        svg.text(String(format: "%.2f", hi), x: barX + 18, y: top + 8, size: 10)
        svg.text(String(format: "%.2f", lo), x: barX + 18, y: top + barH, size: 10)
        return svg.render()
    }
}
