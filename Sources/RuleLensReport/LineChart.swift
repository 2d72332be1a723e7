import Foundation

/// A line chart of several named series over a shared x axis (e.g. separability by layer, one line per
/// site kind, attention against FFN).
public struct LineChart {
    public struct Series {
        public var name: String
        public var points: [(Double, Double)]
        /// Stroke colour ("#rrggbb").
        public var color: String
        public init(name: String, points: [(Double, Double)], color: String) {
            self.name = name; self.points = points; self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// The chart as an SVG document; integer x values get integer ticks.
    public func render(width: Double = 720, height: Double = 440) -> String {
        let legendWidth: Double = 190
        let left: Double = 70, right: Double = 20 + legendWidth, top: Double = 40, bottom: Double = 60
        var svg = SVGDocument(width: width, height: height)
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: .middle, bold: true)
        let all = series.flatMap(\.points).filter { $0.0.isFinite && $0.1.isFinite }
        let (x0, x1) = PlotScale.range(all.map(\.0)), (y0, y1) = PlotScale.range(all.map(\.1))
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - y0) / (y1 - y0) * plotH }
        let xs = Set(all.map(\.0))
        let integerX = xs.allSatisfy { $0 == $0.rounded() } && xs.count <= 40
        PlotScale.axes(&svg, left: left, top: top, width: plotW, height: plotH, x: (x0, x1), y: (y0, y1),
                       xTicks: integerX ? xs.sorted() : nil)
        svg.text(xLabel, x: left + plotW / 2, y: height - 15, size: 12, anchor: .middle)
        svg.text(yLabel, x: 18, y: top + plotH / 2, size: 12, anchor: .middle, rotate: -90)
        for (i, s) in series.enumerated() {
            let pts = s.points.filter { $0.0.isFinite && $0.1.isFinite }.sorted { $0.0 < $1.0 }.map { (px($0.0), py($0.1)) }
            if pts.count > 1 { svg.polyline(pts, stroke: s.color, width: 2) }
            for p in pts { svg.circle(cx: p.0, cy: p.1, r: 3, fill: s.color) }
            let y = top + 10 + Double(i) * 18
            svg.line(x1: width - legendWidth, y1: y - 4, x2: width - legendWidth + 18, y2: y - 4, stroke: s.color, width: 2)
            svg.text(s.name, x: width - legendWidth + 24, y: y, size: 11)
        }
        return svg.render()
    }
}
