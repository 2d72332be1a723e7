import Foundation

/// Horizontal bars with confidence intervals (e.g. a metric under each experimental condition).
public struct BarChart {
    public struct Bar {
        public var label: String
        public var value: Double
        /// 95% interval drawn as a whisker (nil: none).
        public var interval: (Double, Double)?
        public var color: String
        public init(label: String, value: Double, interval: (Double, Double)? = nil, color: String = "#3b6fb6") {
            self.label = label; self.value = value; self.interval = interval; self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var bars: [Bar]
    public init(title: String, xLabel: String, bars: [Bar]) { self.title = title; self.xLabel = xLabel; self.bars = bars }

    /// The chart as an SVG document; the axis starts at 0 (or the smallest value, if negative).
    public func render(width: Double = 720) -> String {
        let rowH: Double = 26, top: Double = 44, bottom: Double = 50
        let labelW = Double(bars.map(\.label.count).max() ?? 4) * 7 + 16
        let left = 10 + labelW, right: Double = 30
        let height = top + bottom + rowH * Double(max(1, bars.count))
        var svg = SVGDocument(width: width, height: height)
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: .middle, bold: true)
        let values = bars.flatMap { b in [b.value] + (b.interval.map { [$0.0, $0.1] } ?? []) }.filter(\.isFinite)
        let (x0, x1) = PlotScale.range(values + [0])
        let plotW = width - left - right
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        let plotH = rowH * Double(bars.count)
        svg.rect(x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#999")
        for t in PlotScale.ticks(x0, x1) {
            svg.line(x1: px(t), y1: top, x2: px(t), y2: top + plotH, stroke: "#eee")
            svg.text(PlotScale.label(t), x: px(t), y: top + plotH + 16, size: 10, anchor: .middle)
        }
        for (i, bar) in bars.enumerated() {
            let y = top + Double(i) * rowH
            svg.text(bar.label, x: left - 6, y: y + rowH * 0.65, size: 11, anchor: .end)
            guard bar.value.isFinite else { continue }
            let a = px(min(0, bar.value)), b = px(max(0, bar.value))
            svg.rect(x: a, y: y + 4, width: max(1, b - a), height: rowH - 8, fill: bar.color,
                     title: String(format: "%@: %.4f", bar.label, bar.value))
            if let (lo, hi) = bar.interval, lo.isFinite, hi.isFinite {
                let cy = y + rowH / 2
                svg.line(x1: px(lo), y1: cy, x2: px(hi), y2: cy, stroke: "#111", width: 1.5)
                svg.line(x1: px(lo), y1: cy - 5, x2: px(lo), y2: cy + 5, stroke: "#111", width: 1.5)
                svg.line(x1: px(hi), y1: cy - 5, x2: px(hi), y2: cy + 5, stroke: "#111", width: 1.5)
            }
        }
        svg.text(xLabel, x: left + plotW / 2, y: height - 12, size: 12, anchor: .middle)
        return svg.render()
    }
}
