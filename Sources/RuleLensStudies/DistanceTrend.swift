import RuleLensNumerics
import RuleLensTasks

/// Whether the hole deepens towards the centre of a held-out square, read as study 1 reads it: over the evaluated
/// cells inside the squares, Spearman's ρ between a cell's Chebyshev distance from its square's centre and its
/// accuracy, with a 95% percentile-bootstrap interval over cells. ρ > 0: accuracy rises away from the centre.
public struct DistanceTrend: Codable, Sendable, Equatable {
    public var spearman: Double?
    public var lo: Double?
    public var hi: Double?
    /// Cells (evaluated (a, b) pairs inside a square) the correlation is over.
    public var cells: Int

    enum CodingKeys: String, CodingKey { case spearman, lo, hi, cells }

    /// Every key always, `null` where a number could not be computed.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(spearman, forKey: .spearman); try c.encode(lo, forKey: .lo); try c.encode(hi, forKey: .hi)
        try c.encode(cells, forKey: .cells)
    }

    /// Resamples of the cell bootstrap, and its seed (fixed: the same results give the same interval).
    public static let resamples = 2000
    public static let seed: UInt64 = 0

    /// Per cell inside any square: (distance from that square's centre, accuracy). Cells are taken in (a, b) order.
    public static func cells(_ report: PlaneAccuracyReport) -> [(distance: Double, accuracy: Double)] {
        let p = report.plane
        var out: [(Double, Double)] = []
        for (i, column) in report.accuracy.enumerated() {
            for (j, accuracy) in column.enumerated() where accuracy.isFinite {
                let a = p.aMin + i, b = p.bMin + j
                guard let square = report.squares.map(\.square).first(where: { $0.contains(a: a, b: b) }) else { continue }
                out.append((Double(square.ring(a: a, b: b)), accuracy))
            }
        }
        return out
    }

    /// The trend of `report`; nil without held-out squares. ρ is null where it is undefined (fewer than 2 cells, or
    /// every cell at one accuracy or one distance).
    public static func compute(_ report: PlaneAccuracyReport) -> DistanceTrend? {
        guard !report.squares.isEmpty else { return nil }
        let cells = self.cells(report)
        let plan = BootstrapPlan(n: cells.count, resamples: resamples, seed: seed, stream: "distance-trend")
        let estimate = plan.estimate { idx in
            RankCorrelation.spearman(idx.map { cells[Int($0)].distance }, idx.map { cells[Int($0)].accuracy })
        }
        func finite(_ v: Double?) -> Double? { v.flatMap { $0.isFinite ? $0 : nil } }
        let rho = finite(estimate.value)
        return DistanceTrend(spearman: rho, lo: rho == nil ? nil : finite(estimate.lower), hi: rho == nil ? nil : finite(estimate.upper),
                             cells: cells.count)
    }
}
