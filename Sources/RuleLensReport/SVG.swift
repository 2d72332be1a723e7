import Foundation

/// A minimal SVG document builder: the primitives the plots are drawn with.
///
/// Output is plain SVG 1.1 that browsers, Jupyter and vector editors open.
public struct SVGDocument {
    public let width: Double
    public let height: Double
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double,
                              fill: String, stroke: String? = nil, strokeWidth: Double = 1, title: String? = nil) {
        let s = stroke.map { " stroke=\"\($0)\" stroke-width=\"\(fmt(strokeWidth))\"" } ?? ""
        let t = title.map { "<title>\(SVGDocument.escape($0))</title>" } ?? ""
        body.append("<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" fill=\"\(fill)\"\(s)>\(t)</rect>")
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#333", width: Double = 1, dash: String? = nil) {
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append("<line x1=\"\(fmt(x1))\" y1=\"\(fmt(y1))\" x2=\"\(fmt(x2))\" y2=\"\(fmt(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(fmt(width))\"\(d)/>")
    }

    public mutating func circle(cx: Double, cy: Double, r: Double, fill: String, opacity: Double = 1, title: String? = nil) {
        let t = title.map { "<title>\(SVGDocument.escape($0))</title>" } ?? ""
        body.append("<circle cx=\"\(fmt(cx))\" cy=\"\(fmt(cy))\" r=\"\(fmt(r))\" fill=\"\(fill)\" fill-opacity=\"\(fmt(opacity))\">\(t)</circle>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 1.5, dash: String? = nil) {
        let p = points.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ")
        let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append("<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(fmt(width))\"\(d)/>")
    }

    public enum Anchor: String { case start, middle, end }

    public mutating func text(_ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              rotate: Double? = nil, fill: String = "#222", bold: Bool = false) {
        let r = rotate.map { " transform=\"rotate(\(fmt($0)) \(fmt(x)) \(fmt(y)))\"" } ?? ""
        let w = bold ? " font-weight=\"bold\"" : ""
        body.append("<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" font-size=\"\(fmt(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(fill)\"\(w)\(r)>\(SVGDocument.escape(s))</text>")
    }

    /// The finished document.
    public func render() -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private func fmt(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }
}

/// Colour maps for heatmaps and categorical palettes.
public enum ColorMap {
    /// Viridis, sampled: t in [0, 1] → "#rrggbb".
    public static func viridis(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [
            (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
            (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
        ]
        return interpolate(stops, t)
    }

    /// Diverging blue–white–red: t in [0, 1], 0.5 is white.
    public static func diverging(_ t: Double) -> String {
        interpolate([(33, 102, 172), (247, 247, 247), (178, 24, 43)], t)
    }

    /// A categorical palette (Tableau 10); index wraps.
    public static func category(_ i: Int) -> String {
        let p = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
        return p[((i % p.count) + p.count) % p.count]
    }

    private static func interpolate(_ stops: [(Double, Double, Double)], _ t: Double) -> String {
        let x = (t.isFinite ? min(max(t, 0), 1) : 0) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        let f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        func hex(_ v: Double) -> String {
            let n = Int((v).rounded())
            let s = String(n, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        return "#" + hex(a.0 + (b.0 - a.0) * f) + hex(a.1 + (b.1 - a.1) * f) + hex(a.2 + (b.2 - a.2) * f)
    }
}
