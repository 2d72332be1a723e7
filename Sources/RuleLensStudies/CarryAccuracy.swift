import Foundation
import RuleLensReport
import RuleLensTasks

/// Accuracy split by whether the units digits carry (study 1's scratchpad finding: with a scratchpad the hole
/// becomes triangles along carry boundaries). A cell (a, b) carries when a mod B + b mod B ≥ B (B = the task's base).
public struct CarryAccuracyReport: Codable, Sendable, Equatable {
    public var base: Int
    /// Inside the held-out squares: cells whose units digits carry / do not.
    public var insideCarry: Double?
    public var insideNoCarry: Double?
    /// Outside the squares.
    public var outsideCarry: Double?
    public var outsideNoCarry: Double?
    /// Examples counted in each of the four groups (inside carry, inside no carry, outside carry, outside no carry).
    public var counts: [Int]

    enum CodingKeys: String, CodingKey {
        case base, counts
        case insideCarry = "inside_carry", insideNoCarry = "inside_no_carry"
        case outsideCarry = "outside_carry", outsideNoCarry = "outside_no_carry"
    }
}

public enum CarryAccuracy {
    /// The base whose units-digit carry matters for an operand task (nil where a carry means nothing: the
    /// linear-regression and chickens-and-rabbits planes).
    public static func base(of task: TaskName) -> Int? {
        switch task {
        case .addition, .modularAddition, .multiDigitAddition: return 10
        case .base9Addition: return 9
        default: return nil
        }
    }

    public static func carries(a: Int, b: Int, base: Int) -> Bool { a % base + b % base >= base }

    public static func compute(results: [(a: Int, b: Int, correct: Bool)], squares: [Square], base: Int) -> CarryAccuracyReport {
        var right = [Int](repeating: 0, count: 4), n = [Int](repeating: 0, count: 4)
        for r in results where r.a >= 0 && r.b >= 0 {
            let inside = squares.contains { $0.contains(a: r.a, b: r.b) }
            let group = (inside ? 0 : 2) + (carries(a: r.a, b: r.b, base: base) ? 0 : 1)
            n[group] += 1
            if r.correct { right[group] += 1 }
        }
        func acc(_ g: Int) -> Double? { n[g] > 0 ? Double(right[g]) / Double(n[g]) : nil }
        return CarryAccuracyReport(base: base, insideCarry: acc(0), insideNoCarry: acc(1), outsideCarry: acc(2),
                                   outsideNoCarry: acc(3), counts: n)
    }

    /// The carry boundaries of `plane` as heatmap paths: in every B×B block of units digits, the staircase that
    /// separates the cells that carry (upper right) from those that do not.
    public static func boundaries(plane: OperandPlane, base: Int, color: String = "#ffffff") -> [Heatmap.Path] {
        var paths: [Heatmap.Path] = []
        let firstA = plane.aMin - ((plane.aMin % base) + base) % base, firstB = plane.bMin - ((plane.bMin % base) + base) % base
        for a0 in stride(from: firstA, through: plane.aMax, by: base) {
            for b0 in stride(from: firstB, through: plane.bMax, by: base) {
                // Column a0+u carries from row b0+(B−u) up: the boundary runs along that row edge.
                var pts: [(x: Double, y: Double)] = [(Double(a0 + 1), Double(b0 + base))]
                for u in 1..<base {
                    let y = Double(b0 + base - u)
                    pts.append((Double(a0 + u), y))
                    pts.append((Double(a0 + u + 1), y))
                }
                // Into the heatmap's cell coordinates, clipped to the plane.
                let shifted = pts.map { (x: min(max($0.x - Double(plane.aMin), 0), Double(plane.aMax - plane.aMin + 1)),
                                         y: min(max($0.y - Double(plane.bMin), 0), Double(plane.bMax - plane.bMin + 1))) }
                paths.append(Heatmap.Path(points: shifted, color: color, width: 0.8, dash: "2,1"))
            }
        }
        return paths
    }

    /// The plane heatmap with the carry boundaries drawn over it.
    public static func heatmap(_ report: PlaneAccuracyReport, base: Int, title: String) -> String {
        var map = PlaneAccuracy.heatmapModel(report, title: title)
        map.paths = boundaries(plane: report.plane, base: base)
        return map.render()
    }

    public static func summaryLine(_ r: CarryAccuracyReport) -> String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
        return "carry (units, base \(r.base)): inside carry \(f(r.insideCarry)) · no carry \(f(r.insideNoCarry))"
            + " · outside carry \(f(r.outsideCarry)) · no carry \(f(r.outsideNoCarry))"
    }
}

/// Accuracy per operand digit count (length generalisation: train on 1–5 digits, test on 6–15).
public enum DigitAccuracy {
    /// Digit count of an example: the longer operand's (nil when the example has no operands).
    public static func digits(_ e: Example) -> Int? {
        guard let a = e.a, let b = e.b else { return nil }
        return max(String(abs(a)).count, String(abs(b)).count)
    }

    /// (digit count, accuracy, examples), ascending by digit count.
    public static func compute(examples: [Example], correct: [Bool]) -> [(digits: Int, accuracy: Double, n: Int)] {
        var right: [Int: Int] = [:], n: [Int: Int] = [:]
        for (e, c) in zip(examples, correct) {
            guard let d = digits(e) else { continue }
            n[d, default: 0] += 1
            if c { right[d, default: 0] += 1 }
        }
        return n.keys.sorted().map { ($0, Double(right[$0] ?? 0) / Double(n[$0]!), n[$0]!) }
    }

    /// Whether a data set is a length split (or any multi-digit set) worth breaking down by digit count.
    public static func applies(_ meta: DataMeta?, _ examples: [Example]) -> Bool {
        meta?.spec.task == .multiDigitAddition || meta?.split == SplitKind.length.rawValue
    }

    public static func summaryLine(_ rows: [(digits: Int, accuracy: Double, n: Int)]) -> String {
        "by digit count: " + rows.map { String(format: "%d: %.3f", $0.digits, $0.accuracy) }.joined(separator: " · ")
    }

    public static func chart(_ series: [(name: String, rows: [(digits: Int, accuracy: Double, n: Int)])], title: String) -> String {
        let colours = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"]
        return LineChart(title: title, xLabel: "digits per operand", yLabel: "answer accuracy",
                         series: series.enumerated().map { i, s in
                             LineChart.Series(name: s.name, points: s.rows.map { (Double($0.digits), $0.accuracy) }, color: colours[i % colours.count])
                         }).render()
    }
}
