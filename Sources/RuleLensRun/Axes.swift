import Foundation

/// A run's variants as points on its axes — the sweep's variables and, with `seeds:`, `seed` — and which axes a path
/// leaves open.
///
/// A path's selector names some axes; the variants it matches may still differ along others, which are then *free*:
/// `eval.test.inside[split=random]` with seeds leaves `seed` free, a bare path leaves every axis along which the
/// variants differ. In a sweep of cases (variables that change together) `x[count=1600]` already names one variant,
/// so nothing is free. A check is read once per combination of its free axes; an aggregate with one argument ranges
/// over the free axes of that argument.
public struct AxisSpace: Sendable {
    /// The axes, in the order labels name them (the sweep's order, `seed` last).
    public let axes: [String]
    /// Each variant's value on every axis.
    public let points: [[String: String]]

    public init(axes: [String], points: [[String: String]]) { self.axes = axes; self.points = points }

    /// Indices of the points that agree with every pair of `selector` (all points for nil).
    public func matching(_ selector: [String: String]?) -> [Int] {
        points.indices.filter { i in (selector ?? [:]).allSatisfy { points[i][$0.key] == $0.value } }
    }

    /// The axes along which the points in `indices` differ.
    public func differing(_ indices: [Int]) -> [String] {
        axes.filter { a in Set(indices.map { points[$0][a] ?? "" }).count > 1 }
    }

    /// The axes a path with this selector leaves open.
    public func open(_ selector: [String: String]?) -> Set<String> { Set(differing(matching(selector))) }

    /// The free axes of `e` outside every one-argument aggregate (those consume their own).
    public func freeAxes(_ e: Expression) -> Set<String> {
        switch e {
        case .number, .string, .bool: return []
        case .path(_, let s): return open(s)
        case .unary(_, let x): return freeAxes(x)
        case .binary(_, let a, let b): return freeAxes(a).union(freeAxes(b))
        case .compare(let es, _): return es.reduce(into: Set<String>()) { $0.formUnion(freeAxes($1)) }
        case .call(let f, let args):
            if Expression.aggregates.contains(f) && args.count == 1 { return [] }
            // A curve over the swept variables, within one seed.
            if f == "saturation" { return args.reduce(into: Set<String>()) { $0.formUnion(freeAxes($1)) }.intersection(["seed"]) }
            return args.reduce(into: Set<String>()) { $0.formUnion(freeAxes($1)) }
        }
    }

    /// The distinct combinations of the `free` axes (in the points' order) among the points that agree with `base`.
    public func combinations(of free: Set<String>, agreeing base: [String: String]) -> [[String: String]] {
        var seen = Set<[String]>(), out: [[String: String]] = []
        let ordered = axes.filter { free.contains($0) }
        for p in points where base.allSatisfy({ p[$0.key] == $0.value }) {
            let key = ordered.map { p[$0] ?? "" }
            if seen.insert(key).inserted { out.append(Dictionary(uniqueKeysWithValues: zip(ordered, key))) }
        }
        return out
    }

    /// `task=addition,seed=0`: a combination's values in axis order.
    public func label(_ c: [String: String]) -> String {
        axes.compactMap { a in c[a].map { "\(a)=\($0)" } }.joined(separator: ",")
    }
}

extension ExperimentSpec {
    /// The spec's variants as points on its axes (all seeds; a --quick run has the first two).
    public var axisSpace: AxisSpace { AxisSpace(axes: sweep.map(\.key), points: variants.map(\.vars)) }
}
