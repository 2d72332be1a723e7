import RuleLensNumerics

/// How examples are split into cross-validation folds.
public enum FoldAssignment: Sendable, Equatable {
    /// Contiguous folds in row order, the first n mod k one example larger — scikit-learn's `KFold(k)` without shuffling.
    case contiguous(Int)
    /// The rows shuffled with `seed` (SeededRNG), then contiguous folds.
    case shuffled(Int, seed: UInt64)

    public var foldCount: Int { switch self { case .contiguous(let k), .shuffled(let k, _): return k } }

    /// Test-row indices of each fold.
    public func folds(_ n: Int) -> [[Int]] {
        var order = Array(0..<n)
        if case .shuffled(_, let seed) = self { var rng = SeededRNG(seed: seed, stream: "folds"); rng.shuffle(&order) }
        let k = foldCount
        var out: [[Int]] = [], start = 0
        for f in 0..<k {
            let size = n / k + (f < n % k ? 1 : 0)
            out.append(Array(order[start..<(start + size)])); start += size
        }
        return out
    }
}

/// Cross-validated linear-probe accuracy, with the Hewitt & Liang control task.
public struct LinearProbeResult: Sendable, Codable, Equatable {
    /// Mean accuracy over the folds, and each fold's.
    public let accuracy: Double
    public let foldAccuracies: [Double]
    /// Correct predictions and test sizes per fold.
    public let foldCorrect: [Int]
    public let foldSizes: [Int]
    /// Same probe, same folds, on the control labels; and accuracy − controlAccuracy.
    public let controlAccuracy: Double?
    public let selectivity: Double?
    /// Majority-class accuracy (the chance baseline).
    public let majorityBaseline: Double
    public let C: Double
    /// Whether every fold's optimiser met its gradient tolerance.
    public let converged: Bool
}

extension Analysis {
    /// k-fold cross-validated accuracy of an L2 multinomial logistic-regression probe (`LogisticRegression`,
    /// same objective as scikit-learn's) predicting `labels` from X. Each fold's probe is trained on the classes
    /// present in its training rows. Needs at least 2 classes and ≥ 2 examples per fold.
    public static func linearProbe(_ x: FloatMatrix, _ labels: Labels, C: Double = 1, folds: FoldAssignment = .shuffled(5, seed: 0),
                                   controlLabels: Labels? = nil, maxIterations: Int = 1000,
                                   name: String = "data") throws -> LinearProbeResult {
        try requireFinite(x, name)
        try requireClasses(labels, name, maxClassesBelowN: true)   // as many classes as examples: nothing to generalise to
        let n = x.rows
        guard folds.foldCount >= 2, n >= 2 * folds.foldCount else {
            throw RuleLensError("\(name): \(folds.foldCount)-fold cross-validation needs ≥ 2 folds and ≥ 2 examples per fold (have \(n) examples)",
                                fix: "use fewer folds (--folds) or more examples")
        }
        guard C > 0, C.isFinite else { throw RuleLensError("probe regularisation C = \(C) must be positive", fix: "pass --C with a positive value, e.g. 1") }
        let split = folds.folds(n)
        let main = crossValidate(x, labels, split, C: C, maxIterations: maxIterations)
        var control: (Double, [Int], Bool)? = nil
        if let cl = controlLabels {
            precondition(cl.count == n)
            control = cl.classCount >= 2 ? crossValidate(x, cl, split, C: C, maxIterations: maxIterations) : (Double(cl.classSizes.max()!) / Double(n), [], true)
        }
        let sizes = split.map(\.count)
        let accs = zip(main.1, sizes).map { Double($0) / Double($1) }
        return LinearProbeResult(accuracy: main.0, foldAccuracies: accs, foldCorrect: main.1, foldSizes: sizes,
                                 controlAccuracy: control?.0, selectivity: control.map { main.0 - $0.0 },
                                 majorityBaseline: Double(labels.classSizes.max()!) / Double(n), C: C,
                                 converged: main.2 && (control?.2 ?? true))
    }

    /// Mean fold accuracy, correct counts per fold, all converged.
    static func crossValidate(_ x: FloatMatrix, _ labels: Labels, _ split: [[Int]], C: Double,
                              maxIterations: Int) -> (Double, [Int], Bool) {
        let n = x.rows
        var correct: [Int] = [], accSum = 0.0, converged = true
        for test in split {
            var isTest = [Bool](repeating: false, count: n)
            for i in test { isTest[i] = true }
            let train = (0..<n).filter { !isTest[$0] }
            let trainLabels = labels.subset(train)
            var right = 0
            if trainLabels.classCount == 1 {
                // Only one class to learn: the probe predicts it everywhere.
                let only = labels.ids[train[0]]
                right = test.filter { labels.ids[$0] == only }.count
            } else {
                let probe = LogisticRegression.fit(x.selectingRows(train), trainLabels.ids, classCount: trainLabels.classCount,
                                                   C: C, maxIterations: maxIterations)
                converged = converged && probe.converged
                // Map the fold's class ids back to the global ids through the names.
                let global = Dictionary(uniqueKeysWithValues: labels.names.enumerated().map { ($1, $0) })
                let predicted = probe.predict(x.selectingRows(test)).map { global[trainLabels.names[$0]]! }
                for (t, i) in test.enumerated() where predicted[t] == labels.ids[i] { right += 1 }
            }
            correct.append(right); accSum += Double(right) / Double(test.count)
        }
        return (accSum / Double(split.count), correct, converged)
    }

    /// Hewitt & Liang control labels: every distinct input type (e.g. the prompt string of an example) gets a
    /// label drawn, with `seed`, from the empirical distribution of the real labels; every example of that type
    /// carries it. A probe that does well on these is memorising types, not reading the property.
    public static func controlLabels(types: [String], labels: Labels, seed: UInt64 = 0) -> Labels {
        precondition(types.count == labels.count)
        var rng = SeededRNG(seed: seed, stream: "control-task")
        var assigned = [String: Int]()
        var ids = [Int](repeating: 0, count: types.count)
        for (i, t) in types.enumerated() {
            if let c = assigned[t] { ids[i] = c; continue }
            let c = labels.ids[rng.int(below: labels.count)] // a draw from the empirical label distribution
            assigned[t] = c; ids[i] = c
        }
        return Labels(ids: ids, names: labels.names)
    }
}
