import Foundation

/// A matrix heatmap as SVG: one cell per value, axis labels, a colour bar, optional outlined rectangles.
///
/// General on purpose: accuracy over an operand plane, CKA between sites, confusion matrices.
/// `values[row][col]`; NaN cells are drawn grey ("no data").
public struct Heatmap {
    /// A rectangle drawn around cells `rows` × `cols` (inclusive index ranges), e.g. a held-out square.
    public struct Outline {
        public var rows: ClosedRange<Int>
        public var cols: ClosedRange<Int>
        public var color: String
        public var label: String?
        public init(rows: ClosedRange<Int>, cols: ClosedRange<Int>, color: String = "#e4002b", label: String? = nil) {
            self.rows = rows; self.cols = cols; self.color = color; self.label = label
        }
    }

    /// A polyline over the cells, in cell-edge coordinates: x = column edge (0…nCols), y = row edge (0…nRows,
    /// row r spans r…r+1). E.g. the carry boundaries on an operand plane.
    public struct Path {
        public var points: [(x: Double, y: Double)]
        public var color: String
        public var width: Double
        public var dash: String?
        public init(points: [(x: Double, y: Double)], color: String = "#ffffff", width: Double = 1, dash: String? = nil) {
            self.points = points; self.color = color; self.width = width; self.dash = dash
        }
    }

    public var values: [[Double]]
    /// One label per row / column; long label lists are thinned to at most `maxTicks` shown.
    public var rowLabels: [String]
    public var colLabels: [String]
    public var title: String = ""
    public var xLabel: String = ""
    public var yLabel: String = ""
    /// Colour range; nil = the finite min and max of `values`.
    public var range: ClosedRange<Double>? = nil
    public var colorMap: (Double) -> String = ColorMap.viridis
    public var colorBarLabel: String = ""
    public var outlines: [Outline] = []
    public var paths: [Path] = []
    /// Row 0 at the bottom (a plot's y axis) instead of the top (a matrix).
    public var rowsUpward: Bool = false
    /// Cell size in pixels (nil = fit the matrix into about 600 px).
    public var cellSize: Double? = nil
    public var maxTicks: Int = 12
    /// Write each value into its cell (for small matrices).
    public var annotate: Bool = false

    public init(values: [[Double]], rowLabels: [String]? = nil, colLabels: [String]? = nil) {
        self.values = values
        let nCols = values.first?.count ?? 0
        self.rowLabels = rowLabels ?? values.indices.map(String.init)
        self.colLabels = colLabels ?? (0..<nCols).map(String.init)
    }

    /// The SVG document text.
    public func render() -> String {
        let nRows = values.count, nCols = values.first?.count ?? 0
        let finite = values.flatMap { $0 }.filter(\.isFinite)
        let lo = range?.lowerBound ?? (finite.min() ?? 0), hi = range?.upperBound ?? (finite.max() ?? 1)
        let span = hi > lo ? hi - lo : 1
        let cell = cellSize ?? max(2, min(40, 600 / Double(max(nRows, nCols, 1))))
        let rowLabelWidth = Double((rowLabels.map(\.count).max() ?? 1)) * 7 + 10
        let left = 40 + rowLabelWidth, top = title.isEmpty ? 20.0 : 44.0
        let plotW = cell * Double(nCols), plotH = cell * Double(nRows)
        let barX = left + plotW + 24
        // Long column labels (hook names, say) are slanted so neighbours do not overlap.
        let colStepForWidth = max(1, Int((Double(nCols) / Double(maxTicks)).rounded(.up)))
        let longestCol = Double(colLabels.map(\.count).max() ?? 1)
        let slant = longestCol * 6 > cell * Double(colStepForWidth)
        let bottom = slant ? longestCol * 4.5 + 40 : 70
        let width = barX + 90, height = top + plotH + bottom
        var svg = SVGDocument(width: width, height: height)
        if !title.isEmpty { svg.text(title, x: left + plotW / 2, y: 24, size: 15, anchor: .middle, bold: true) }

        func y(ofRow r: Int) -> Double { top + cell * Double(rowsUpward ? nRows - 1 - r : r) }
        func x(ofCol c: Int) -> Double { left + cell * Double(c) }
        for r in 0..<nRows {
            for c in 0..<min(nCols, values[r].count) {
                let v = values[r][c]
                let fill = v.isFinite ? colorMap((v - lo) / span) : "#d0d0d0"
                let tip = "\(rowLabels[safe: r] ?? String(r)), \(colLabels[safe: c] ?? String(c)): " + (v.isFinite ? format(v) : "no data")
                svg.rect(x: x(ofCol: c), y: y(ofRow: r), width: cell + 0.05, height: cell + 0.05, fill: fill,
                         title: cell >= 6 ? tip : nil)
                if annotate && cell >= 24 && v.isFinite {
                    let t = (v - lo) / span
                    svg.text(format(v), x: x(ofCol: c) + cell / 2, y: y(ofRow: r) + cell / 2 + 4, size: min(11, cell / 3),
                             anchor: .middle, fill: t > 0.6 ? "#222" : "#fff")
                }
            }
        }
        svg.rect(x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#333", strokeWidth: 1)

        // Ticks: every k-th label so at most maxTicks show.
        let rowStep = max(1, Int((Double(nRows) / Double(maxTicks)).rounded(.up)))
        for r in stride(from: 0, to: nRows, by: rowStep) {
            svg.text(rowLabels[safe: r] ?? "", x: left - 4, y: y(ofRow: r) + cell / 2 + 4, size: 10, anchor: .end)
        }
        let colStep = max(1, Int((Double(nCols) / Double(maxTicks)).rounded(.up)))
        for c in stride(from: 0, to: nCols, by: colStep) {
            if slant {
                svg.text(colLabels[safe: c] ?? "", x: x(ofCol: c) + cell / 2, y: top + plotH + 10, size: 10, anchor: .end, rotate: -45)
            } else {
                svg.text(colLabels[safe: c] ?? "", x: x(ofCol: c) + cell / 2, y: top + plotH + 14, size: 10, anchor: .middle)
            }
        }
        if !xLabel.isEmpty { svg.text(xLabel, x: left + plotW / 2, y: top + plotH + bottom - 36, size: 12, anchor: .middle) }
        if !yLabel.isEmpty { svg.text(yLabel, x: 14, y: top + plotH / 2, size: 12, anchor: .middle, rotate: -90) }

        for p in paths where p.points.count > 1 {
            let pts = p.points.map { (left + cell * $0.x, top + cell * (rowsUpward ? Double(nRows) - $0.y : $0.y)) }
            svg.polyline(pts, stroke: p.color, width: p.width, dash: p.dash)
        }

        for o in outlines {
            let r0 = rowsUpward ? o.rows.upperBound : o.rows.lowerBound
            svg.rect(x: x(ofCol: o.cols.lowerBound), y: y(ofRow: r0), width: cell * Double(o.cols.count),
                     height: cell * Double(o.rows.count), fill: "none", stroke: o.color, strokeWidth: 2)
            if let label = o.label {
                svg.text(label, x: x(ofCol: o.cols.lowerBound), y: y(ofRow: r0) - 3, size: 10, fill: o.color)
            }
        }

        // Colour bar: 50 bands from lo (bottom) to hi (top).
        let bands = 50, barH = max(plotH, 120)
        for i in 0..<bands {
            let t = (Double(i) + 0.5) / Double(bands)
            svg.rect(x: barX, y: top + barH * (1 - Double(i + 1) / Double(bands)), width: 14, height: barH / Double(bands) + 0.3,
                     fill: colorMap(t))
        }
        svg.rect(x: barX, y: top, width: 14, height: barH, fill: "none", stroke: "#333", strokeWidth: 0.5)
        for i in 0...4 {
            let t = Double(i) / 4
            svg.text(format(lo + t * span), x: barX + 18, y: top + barH * (1 - t) + 4, size: 10)
        }
        if !colorBarLabel.isEmpty {
            svg.text(colorBarLabel, x: barX + 7, y: top + barH + 16, size: 10, anchor: .middle)
        }
        return svg.render()
    }

    /// Writes the SVG to `path` atomically.
    public func write(to path: String) throws {
        try Data(render().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func format(_ v: Double) -> String {
        abs(v) >= 100 || v == v.rounded() ? String(Int(v.rounded())) : String(format: "%.2f", v)
    }
}

fileprivate extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
