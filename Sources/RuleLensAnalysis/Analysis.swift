import RuleLensNumerics

/// Namespace for the measurements RuleLens runs on activations.
///
/// Every measurement takes an activation matrix X [n, d] (one row per example, Float) and, where it needs one,
/// a label vector encoded as `Labels` (class ids 0..<k). Inputs are validated up front: NaN/inf in X,
/// a single class, or fewer examples than a metric needs raise a `RuleLensError`, never a silent NaN.
public enum Analysis {
    /// Throws if `x` holds NaN or infinite values; `name` says where the data came from (site name, file).
    public static func requireFinite(_ x: FloatMatrix, _ name: String) throws {
        let bad = x.nonFiniteCount()
        if bad > 0 {
            throw RuleLensError("\(name): \(bad) of \(x.count) activation values are NaN or infinite",
                                fix: "re-run the dump (the model may have diverged) or drop the affected examples")
        }
    }

    /// The power of two that brings `largest` (a largest magnitude) into [0.5, 1): multiplying by it is exact, so a
    /// computation that squares values (distances, inertia) can run in that scale without overflowing float32 on
    /// data of size 1e30 or underflowing on data of size 1e-30, and scale back. 1 for 0 or a non-finite value.
    public static func unitScale(_ largest: Float) -> Float {
        largest > 0 && largest.isFinite ? Float(sign: .plus, exponent: -largest.exponent - 1, significand: 1) : 1
    }

    /// The largest magnitude in `x`.
    public static func largestMagnitude(_ x: FloatMatrix) -> Float {
        var largest: Float = 0
        for i in 0..<x.count { largest = max(largest, abs(x.ptr[i])) }
        return largest
    }

    /// Throws unless there are at least `minClasses` classes and every metric-specific size condition holds.
    public static func requireClasses(_ labels: Labels, _ name: String, minClasses: Int = 2, maxClassesBelowN: Bool = false) throws {
        if labels.classCount < minClasses {
            throw RuleLensError("\(name): the label has \(labels.classCount) distinct value(s) (\(labels.names.prefix(3).joined(separator: ", "))); at least \(minClasses) are needed",
                                fix: "choose a label column with at least \(minClasses) classes, or include examples of more classes")
        }
        if maxClassesBelowN && labels.classCount > labels.count - 1 {
            throw RuleLensError("\(name): \(labels.count) examples but \(labels.classCount) classes; this metric needs 2 ≤ classes ≤ examples − 1",
                                fix: "use more examples per class or a coarser label")
        }
    }
}

/// Class labels encoded as ids 0..<classCount, with the original value of each id in `names`.
public struct Labels: Sendable, Equatable {
    /// Class id of each example.
    public let ids: [Int]
    /// Original label value of each class id (sorted: numerically for integer labels, else lexicographically).
    public let names: [String]
    public var classCount: Int { names.count }
    public var count: Int { ids.count }

    /// Encodes integer labels; ids follow the sorted order of the distinct values.
    public init(_ values: [Int]) {
        let distinct = Array(Set(values)).sorted()
        let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
        ids = values.map { index[$0]! }
        names = distinct.map(String.init)
    }

    /// Encodes string labels; ids follow the lexicographic order of the distinct values.
    public init(strings values: [String]) {
        let distinct = Array(Set(values)).sorted()
        let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
        ids = values.map { index[$0]! }
        names = distinct
    }

    /// Ids already in 0..<classCount with the given names.
    public init(ids: [Int], names: [String]) {
        precondition(ids.allSatisfy { $0 >= 0 && $0 < names.count })
        self.ids = ids; self.names = names
    }

    /// Examples per class.
    public var classSizes: [Int] {
        var sizes = [Int](repeating: 0, count: classCount)
        for id in ids { sizes[id] += 1 }
        return sizes
    }

    /// The labels of the examples at `indices`, re-encoded over the classes that occur there.
    public func subset(_ indices: [Int]) -> Labels {
        let sub = indices.map { ids[$0] }
        let present = Array(Set(sub)).sorted()
        let index = Dictionary(uniqueKeysWithValues: present.enumerated().map { ($1, $0) })
        return Labels(ids: sub.map { index[$0]! }, names: present.map { names[$0] })
    }
}
