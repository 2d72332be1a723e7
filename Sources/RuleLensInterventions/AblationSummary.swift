import RuleLensNumerics

/// A metric clean, ablated, and their change (ablated − clean, paired per example), each with its interval.
public struct MetricEffect: Sendable {
    public var clean: Estimate
    public var ablated: Estimate
    public var change: Estimate
}

/// One cell's effects in one group of examples.
public struct CellEffect: Sendable {
    public var cell: AblationCell
    public var effects: [AblationMetric: MetricEffect]
}

/// Per layer, attention's effect beside the FFN's and their difference (attention change − FFN change,
/// = attention-ablated − FFN-ablated per example, bootstrapped paired).
public struct LayerContrast: Sendable {
    public var layer: Int
    public var attention: [AblationMetric: Estimate]
    public var mlp: [AblationMetric: Estimate]
    public var difference: [AblationMetric: Estimate]
}

/// The summary of a sweep over one group of examples (all, or one label value).
public struct AblationGroupSummary: Sendable {
    /// nil for all examples; else the label value.
    public var label: String?
    public var count: Int
    public var clean: [AblationMetric: Estimate]
    public var cells: [CellEffect]
    /// One row per layer that has both an `attn` and an `mlp` cell.
    public var contrasts: [LayerContrast]
}

extension AblationSweep {
    /// Effects over the examples `indices` with `resamples` bootstrap resamples (seeded; the same draws for
    /// every statistic of the group, so paired differences stay paired).
    public func summary(indices: [Int], label: String?, resamples: Int, seed: UInt64) -> AblationGroupSummary {
        let plan = BootstrapPlan(n: indices.count, resamples: resamples, seed: seed, stream: label ?? "(all)")
        func pick(_ v: [Double]) -> [Double] { indices.map { v[$0] } }
        var cleanValues: [AblationMetric: [Double]] = [:]
        var clean: [AblationMetric: Estimate] = [:]
        for m in AblationMetric.allCases {
            cleanValues[m] = pick(self.clean.metrics.values(m))
            clean[m] = plan.mean(cleanValues[m]!)
        }
        var cells: [CellEffect] = []
        var byCell: [AblationCell: [AblationMetric: [Double]]] = [:]
        for run in runs {
            var effects: [AblationMetric: MetricEffect] = [:]
            var values: [AblationMetric: [Double]] = [:]
            for m in AblationMetric.allCases {
                let a = pick(run.metrics.values(m)), c = cleanValues[m]!
                values[m] = a
                effects[m] = MetricEffect(clean: clean[m]!, ablated: plan.mean(a), change: plan.mean(zip(a, c).map { $0 - $1 }))
            }
            byCell[run.cell!] = values
            cells.append(CellEffect(cell: run.cell!, effects: effects))
        }
        var contrasts: [LayerContrast] = []
        let layers = Set(runs.compactMap { $0.cell?.layer }).sorted()
        let stack = runs.compactMap { $0.cell?.stack }.first ?? ""     // one sweep ablates one stack's blocks
        for l in layers {
            guard let attn = byCell[AblationCell(layer: l, component: .attn, stack: stack)],
                  let mlp = byCell[AblationCell(layer: l, component: .mlp, stack: stack)] else { continue }
            var a: [AblationMetric: Estimate] = [:], f: [AblationMetric: Estimate] = [:], d: [AblationMetric: Estimate] = [:]
            for m in AblationMetric.allCases {
                let c = cleanValues[m]!
                a[m] = plan.mean(zip(attn[m]!, c).map { $0 - $1 })
                f[m] = plan.mean(zip(mlp[m]!, c).map { $0 - $1 })
                d[m] = plan.mean(zip(attn[m]!, mlp[m]!).map { $0 - $1 })
            }
            contrasts.append(LayerContrast(layer: l, attention: a, mlp: f, difference: d))
        }
        return AblationGroupSummary(label: label, count: indices.count, clean: clean, cells: cells, contrasts: contrasts)
    }
}
