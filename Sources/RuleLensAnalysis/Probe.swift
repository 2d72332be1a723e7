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
    /// Whether every fold's optimiser (probe and control) met its gradient tolerance.
    public let converged: Bool
    /// L-BFGS iterations of each fold's probe, and of each fold's control probe (empty without a control task).
    public let foldIterations: [Int]
    public let controlIterations: [Int]
    /// Largest final max|∇| (of the objective divided by C·n, scikit-learn's `gtol` measure) over every fold's
    /// probe and control probe.
    public let gradientNorm: Double
}

/// The optimum of each fold's probe, kept to warm-start the next fit (the next fold, or the next C of a path).
struct FoldStarts {
    /// Per fold: parameters and the class names they belong to (a fold may lack a rare class).
    var fits: [Int: (parameters: [Double], classes: [String])] = [:]

    /// A start for a fit on `classes`: the same fold's earlier solution, else the nearest earlier fold's, mapped
    /// class by class (weights of classes the earlier fit did not have start at 0). nil when there is none yet.
    func start(fold: Int, classes: [String], features d: Int) -> [Double]? {
        guard let (theta, from) = fits[fold] ?? (0..<fold).reversed().lazy.compactMap({ fits[$0] }).first else { return nil }
        let m = classes.count == 2 ? 1 : classes.count, mFrom = from.count == 2 ? 1 : from.count
        guard theta.count == (d + 1) * mFrom else { return nil }
        if from == classes { return theta }
        if m == 1 || mFrom == 1 { return nil }   // binary and multinomial parameterisations do not map
        let index = Dictionary(uniqueKeysWithValues: from.enumerated().map { ($1, $0) })
        var out = [Double](repeating: 0, count: (d + 1) * m)
        for (c, name) in classes.enumerated() {
            guard let old = index[name] else { continue }
            for j in 0...d { out[j * m + c] = theta[j * mFrom + old] }
        }
        return out
    }
}

extension Analysis {
    /// k-fold cross-validated accuracy of an L2 multinomial logistic-regression probe (`LogisticRegression`,
    /// same objective as scikit-learn's) predicting `labels` from X. Each fold's probe is trained on the classes
    /// present in its training rows, warm-started from the previous fold's optimum (same optimum, fewer
    /// iterations). Needs at least 2 classes and ≥ 2 examples per fold.
    public static func linearProbe(_ x: FloatMatrix, _ labels: Labels, C: Double = 1, folds: FoldAssignment = .shuffled(5, seed: 0),
                                   controlLabels: Labels? = nil, maxIterations: Int = 1000,
                                   name: String = "data") throws -> LinearProbeResult {
        try linearProbePath(x, labels, Cs: [C], folds: folds, controlLabels: controlLabels, maxIterations: maxIterations, name: name)[0]
    }

    /// `linearProbe` for each regularisation strength in `Cs`, in the order given; each C's fold probes start from
    /// the previous C's optimum of the same fold (put the Cs in increasing order: stronger regularisation first,
    /// where the problem is best conditioned).
    public static func linearProbePath(_ x: FloatMatrix, _ labels: Labels, Cs: [Double], folds: FoldAssignment = .shuffled(5, seed: 0),
                                       controlLabels: Labels? = nil, maxIterations: Int = 1000,
                                       name: String = "data") throws -> [LinearProbeResult] {
        try requireFinite(x, name)
        try requireClasses(labels, name, maxClassesBelowN: true)   // as many classes as examples: nothing to generalise to
        let n = x.rows
        guard folds.foldCount >= 2, n >= 2 * folds.foldCount else {
            throw RuleLensError("\(name): \(folds.foldCount)-fold cross-validation needs ≥ 2 folds and ≥ 2 examples per fold (have \(n) examples)",
                                fix: "use fewer folds (--folds) or more examples")
        }
        guard !Cs.isEmpty else { throw RuleLensError("no regularisation strength C given", fix: "pass --C with a positive value, e.g. 1") }
        for C in Cs {
            guard C > 0, C.isFinite else { throw RuleLensError("probe regularisation C = \(C) must be positive", fix: "pass --C with a positive value, e.g. 1") }
        }
        let split = folds.folds(n)
        let sizes = split.map(\.count)
        var mainStarts = FoldStarts(), controlStarts = FoldStarts()
        var results: [LinearProbeResult] = []
        for C in Cs {
            let main = crossValidate(x, labels, split, C: C, maxIterations: maxIterations, starts: &mainStarts)
            var control: CrossValidation? = nil
            var controlAccuracy: Double? = nil
            if let cl = controlLabels {
                precondition(cl.count == n)
                if cl.classCount >= 2 {
                    control = crossValidate(x, cl, split, C: C, maxIterations: maxIterations, starts: &controlStarts)
                    controlAccuracy = control!.accuracy
                } else {
                    controlAccuracy = Double(cl.classSizes.max()!) / Double(n)
                }
            }
            let accs = zip(main.correct, sizes).map { Double($0) / Double($1) }
            results.append(LinearProbeResult(accuracy: main.accuracy, foldAccuracies: accs, foldCorrect: main.correct, foldSizes: sizes,
                                             controlAccuracy: controlAccuracy, selectivity: controlAccuracy.map { main.accuracy - $0 },
                                             majorityBaseline: Double(labels.classSizes.max()!) / Double(n), C: C,
                                             converged: main.converged && (control?.converged ?? true),
                                             foldIterations: main.iterations, controlIterations: control?.iterations ?? [],
                                             gradientNorm: max(main.gradientNorm, control?.gradientNorm ?? 0)))
        }
        return results
    }

    struct CrossValidation {
        var accuracy: Double, correct: [Int], converged: Bool, iterations: [Int], gradientNorm: Double
    }

    /// Mean fold accuracy, correct counts per fold, convergence, iterations per fold, the largest final gradient.
    static func crossValidate(_ x: FloatMatrix, _ labels: Labels, _ split: [[Int]], C: Double,
                              maxIterations: Int, starts: inout FoldStarts) -> CrossValidation {
        let n = x.rows
        var result = CrossValidation(accuracy: 0, correct: [], converged: true, iterations: [], gradientNorm: 0)
        var accSum = 0.0
        let global = Dictionary(uniqueKeysWithValues: labels.names.enumerated().map { ($1, $0) })
        for (f, test) in split.enumerated() {
            var isTest = [Bool](repeating: false, count: n)
            for i in test { isTest[i] = true }
            let train = (0..<n).filter { !isTest[$0] }
            let trainLabels = labels.subset(train)
            var right = 0
            if trainLabels.classCount == 1 {
                // Only one class to learn: the probe predicts it everywhere.
                let only = labels.ids[train[0]]
                right = test.filter { labels.ids[$0] == only }.count
                result.iterations.append(0)
            } else {
                let start = starts.start(fold: f, classes: trainLabels.names, features: x.cols)
                let probe = LogisticRegression.fit(x.selectingRows(train), trainLabels.ids, classCount: trainLabels.classCount,
                                                   C: C, maxIterations: maxIterations, initial: start)
                starts.fits[f] = (probe.parameters, trainLabels.names)
                result.converged = result.converged && probe.converged
                result.iterations.append(probe.iterations)
                result.gradientNorm = max(result.gradientNorm, probe.gradientNorm)
                // Map the fold's class ids back to the global ids through the names.
                let predicted = probe.predict(x.selectingRows(test)).map { global[trainLabels.names[$0]]! }
                for (t, i) in test.enumerated() where predicted[t] == labels.ids[i] { right += 1 }
            }
            result.correct.append(right); accSum += Double(right) / Double(test.count)
        }
        result.accuracy = accSum / Double(split.count)
        return result
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
