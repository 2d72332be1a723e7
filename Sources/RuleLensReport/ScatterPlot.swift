import Foundation

/// A 2-D scatter plot, points coloured by category (e.g. PCA projections coloured by rule), with a legend.
public struct ScatterPlot {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    /// Points (x, y) and the category index of each.
    public var points: [(Double, Double)]
    public var categories: [Int]
    /// Legend text of each category index.
    public var categoryNames: [String]

    public init(title: String, xLabel: String, yLabel: String, points: [(Double, Double)], categories: [Int]? = nil,
                categoryNames: [String] = []) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.points = points
        self.categories = categories ?? [Int](repeating: 0, count: points.count)
        self.categoryNames = categoryNames
    }

    /// The plot as an SVG document (points drawn in a seeded-independent, stable order).
    public func render(width: Double = 640, height: Double = 480) -> String {
        let legendWidth: Double = categoryNames.count > 1 ? 150 : 0
        let left: Double = 70, right: Double = 20 + legendWidth, top: Double = 40, bottom: Double = 60
        var svg = SVGDocument(width: width, height: height)
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: .middle, bold: true)
        let finite = points.filter { $0.0.isFinite && $0.1.isFinite }
        let (x0, x1) = PlotScale.range(finite.map(\.0)), (y0, y1) = PlotScale.range(finite.map(\.1))
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - y0) / (y1 - y0) * plotH }
        PlotScale.axes(&svg, left: left, top: top, width: plotW, height: plotH, x: (x0, x1), y: (y0, y1))
        svg.text(xLabel, x: left + plotW / 2, y: height - 15, size: 12, anchor: .middle)
        svg.text(yLabel, x: 18, y: top + plotH / 2, size: 12, anchor: .middle, rotate: -90)
        let radius = points.count > 2000 ? 1.6 : 2.8
        for (i, p) in points.enumerated() where p.0.isFinite && p.1.isFinite {
            svg.circle(cx: px(p.0), cy: py(p.1), r: radius, fill: ColorMap.category(categories[i]), opacity: 0.7)
        }
        if categoryNames.count > 1 {
            for (c, name) in categoryNames.prefix(20).enumerated() {
                let y = top + 10 + Double(c) * 18
                svg.circle(cx: width - legendWidth + 5, cy: y - 4, r: 5, fill: ColorMap.category(c))
                svg.text(name, x: width - legendWidth + 15, y: y, size: 11)
            }
            if categoryNames.count > 20 { svg.text("… \(categoryNames.count - 20) more", x: width - legendWidth + 15, y: top + 10 + 20 * 18, size: 11) }
        }
        return svg.render()
    }
}

/// Axis ranges, ticks and frames shared by the plots.
public enum PlotScale {
    /// A padded [min, max] of the values (a unit range around a constant; [0, 1] when empty).
    public static func range(_ values: [Double], pad: Double = 0.05) -> (Double, Double) {
        guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
        if hi - lo < 1e-12 { return (lo - 0.5, hi + 0.5) }
        let m = (hi - lo) * pad
        return (lo - m, hi + m)
    }

    /// About `count` round tick values covering [lo, hi].
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let raw = (hi - lo) / Double(max(count, 1))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: abs(v) >= 100 ? "%.0f" : (abs(v) >= 1 ? "%.2g" : "%.2g"), v)
    }

    /// Frame, grid lines and tick labels of a plot area.
    public static func axes(_ svg: inout SVGDocument, left: Double, top: Double, width: Double, height: Double,
                            x: (Double, Double), y: (Double, Double), xTicks: [Double]? = nil) {
        svg.rect(x: left, y: top, width: width, height: height, fill: "none", stroke: "#999")
        for t in xTicks ?? ticks(x.0, x.1) {
            let px = left + (t - x.0) / (x.1 - x.0) * width
            svg.line(x1: px, y1: top, x2: px, y2: top + height, stroke: "#eee")
            svg.text(label(t), x: px, y: top + height + 16, size: 10, anchor: .middle)
        }
        for t in ticks(y.0, y.1) {
            let py = top + height - (t - y.0) / (y.1 - y.0) * height
            svg.line(x1: left, y1: py, x2: left + width, y2: py, stroke: "#eee")
            svg.text(label(t), x: left - 6, y: py + 4, size: 10, anchor: .end)
        }
    }
}
