import Foundation
import RuleLensNumerics

/// Everything that determines a generated data set: task, format, split, split options and seed.
/// Same spec → byte-identical files.
public struct TaskSpec: Codable, Equatable, Sendable {
    public static let generatorVersion = "rulelens-tasks 2"  // 2: every example records its source keys

    public var task: TaskName
    public var format: TaskFormat = .direct
    public var split: SplitKind = .random
    /// `random`: share of examples in train.
    public var trainFraction: Double = 0.7
    /// `leave-square-out`: centre (nil = the task's published default) and half-length L.
    public var centerA: Int? = nil
    public var centerB: Int? = nil
    public var half: Int = 10
    /// `holes`: number of squares; each half-length is drawn from `holeHalfMin...holeHalfMax`.
    public var holes: Int = 3
    public var holeHalfMin: Int = 10
    public var holeHalfMax: Int = 19
    /// `multi-digit-addition`: digit counts for the random split, and train/test ranges for `length`.
    public var digits: ClosedRange<Int> = 1...5
    public var trainDigits: ClosedRange<Int> = 1...5
    public var testDigits: ClosedRange<Int> = 6...15
    /// Sampled tasks (multi-digit addition, study 2): examples to generate (nil = the task's default);
    /// for the `length` split this is the train count and `testPerDigit` sets the test count.
    public var count: Int? = nil
    public var testPerDigit: Int = 100
    public var seed: UInt64 = 0

    public init(task: TaskName, format: TaskFormat = .direct, split: SplitKind = .random, seed: UInt64 = 0) {
        self.task = task; self.format = format; self.split = split; self.seed = seed
    }

    /// The leave-square-out centre actually used.
    public var center: (Int, Int) {
        let d = OperandTasks.defaultCenter(of: task)
        return (centerA ?? d.0, centerB ?? d.1)
    }

    /// Default example counts of the sampled tasks.
    public var resolvedCount: Int {
        if let count { return count }
        switch task {
        case .syllogism: return 2400
        case .mathDerivation: return 3000
        case .explanatory: return 1000
        default: return 10_000
        }
    }

    /// Checks that the options make sense for the task before anything is generated.
    public func validate() throws {
        guard task.formats.contains(format) else {
            let defined = TaskName.allCases.filter { $0.formats.contains(format) }.map(\.rawValue)
            throw RuleLensError("format \(format.rawValue) is not defined for task \(task.rawValue)",
                                fix: "use --format " + task.formats.map(\.rawValue).joined(separator: " or ")
                                    + " with \(task.rawValue); format \(format.rawValue) is for: " + defined.joined(separator: ", "))
        }
        switch split {
        case .random:
            guard trainFraction > 0, trainFraction < 1 else {
                throw RuleLensError("--train-fraction \(trainFraction) is not strictly between 0 and 1",
                                    fix: "give a fraction such as 0.7")
            }
        case .leaveSquareOut, .holes:
            guard task.hasPlane else {
                throw RuleLensError("split \(split.rawValue) needs an operand-plane task, not \(task.rawValue)",
                                    fix: "use it with " + TaskName.allCases.filter(\.hasPlane).map(\.rawValue)
                                        .joined(separator: ", ") + "; or use --split random")
            }
        case .length:
            guard task == .multiDigitAddition else {
                throw RuleLensError("split length needs task multi-digit-addition, not \(task.rawValue)",
                                    fix: "use --task multi-digit-addition --split length, or another split")
            }
            guard trainDigits.upperBound < testDigits.lowerBound || testDigits.upperBound < trainDigits.lowerBound else {
                throw RuleLensError("--train-digits \(trainDigits.lowerBound)-\(trainDigits.upperBound) and --test-digits "
                                    + "\(testDigits.lowerBound)-\(testDigits.upperBound) overlap",
                                    fix: "give disjoint digit ranges, e.g. --train-digits 1-5 --test-digits 6-15")
            }
        }
        for (name, r) in [("--digits", digits), ("--train-digits", trainDigits), ("--test-digits", testDigits)] {
            guard r.lowerBound >= 1, r.upperBound <= 18 else {
                throw RuleLensError("\(name) \(r.lowerBound)-\(r.upperBound) is outside 1-18",
                                    fix: "digit counts run from 1 to 18 (sums must fit in 64 bits)")
            }
        }
        if let count, count < 2 {
            throw RuleLensError("--count \(count) is too small", fix: "give at least 2 examples")
        }
        guard testPerDigit >= 1 else {
            throw RuleLensError("--test-per-digit \(testPerDigit) is below 1", fix: "give a positive count")
        }
    }

    /// Generates the data set.
    public func generate() throws -> GeneratedData {
        try validate()
        var squares: [Square] = []
        var train: [Example] = [], test: [Example] = []
        let plane = OperandTasks.plane(of: task)
        switch task {
        case .addition, .modularAddition, .base9Addition, .linearRegression, .chickensRabbits:
            let points = OperandTasks.points(of: task)
            let heldOut: (Int, Int) -> Bool
            switch split {
            case .random:
                var order = Array(points.indices)
                var rng = SeededRNG(seed: seed, stream: "split")
                rng.shuffle(&order)
                let nTrain = Int((trainFraction * Double(points.count)).rounded())
                try checkNonEmpty(train: nTrain, test: points.count - nTrain)
                let testSet = Set(order[nTrain...].map { points[$0].a * 100_000 + points[$0].b })
                heldOut = { a, b in testSet.contains(a * 100_000 + b) }
            case .leaveSquareOut:
                let sq = Square(centerA: center.0, centerB: center.1, half: half)
                try Splits.checkSquareFits(sq, task: task)
                squares = [sq]
                heldOut = { a, b in sq.contains(a: a, b: b) }
            case .holes:
                squares = try Splits.placeHoles(count: holes, halfRange: holeHalfMin...holeHalfMax, task: task, seed: seed)
                let sqs = squares
                heldOut = { a, b in sqs.contains { $0.contains(a: a, b: b) } }
            case .length:
                preconditionFailure("validated above")
            }
            for p in points {
                let e = OperandTasks.example(task: task, a: p.a, b: p.b, format: format)
                if heldOut(p.a, p.b) { test.append(e) } else { train.append(e) }
            }
        case .multiDigitAddition:
            var rng = SeededRNG(seed: seed, stream: "instances")
            if split == .length {
                train = MultiDigit.sample(count: resolvedCount, digits: trainDigits, format: format, rng: &rng)
                var seen = Set<String>()
                for d in testDigits {
                    test += MultiDigit.sample(count: testPerDigit, digits: d...d, format: format, rng: &rng, seen: &seen)
                }
            } else {
                let all = MultiDigit.sample(count: resolvedCount, digits: digits, format: format, rng: &rng)
                (train, test) = try randomSplit(all)
            }
        case .syllogism, .mathDerivation, .explanatory:
            var rng = SeededRNG(seed: seed, stream: "instances")
            let all: [Example]
            switch task {
            case .syllogism: all = try Syllogisms.generate(count: resolvedCount, rng: &rng)
            case .mathDerivation: all = try MathDerivation.generate(count: resolvedCount, rng: &rng)
            default: all = try Explanatory.generate(count: resolvedCount, rng: &rng)
            }
            (train, test) = try randomSplit(all)
        }
        // Train order is shuffled (training reads it in file order); test keeps generation order.
        var orderRNG = SeededRNG(seed: seed, stream: "order")
        orderRNG.shuffle(&train)
        for i in train.indices { train[i].id = i }
        for i in test.indices { test[i].id = i }
        let meta = DataMeta(spec: self, trainCount: train.count, testCount: test.count,
                            plane: plane, squares: squares)
        return GeneratedData(train: train, test: test, meta: meta)
    }

    private func randomSplit(_ all: [Example]) throws -> ([Example], [Example]) {
        guard split == .random else { preconditionFailure("validated above") }
        var shuffled = all
        var rng = SeededRNG(seed: seed, stream: "split")
        rng.shuffle(&shuffled)
        let nTrain = Int((trainFraction * Double(all.count)).rounded())
        try checkNonEmpty(train: nTrain, test: all.count - nTrain)
        return (Array(shuffled[..<nTrain]), Array(shuffled[nTrain...]))
    }

    private func checkNonEmpty(train: Int, test: Int) throws {
        guard train > 0, test > 0 else {
            throw RuleLensError("--train-fraction \(trainFraction) leaves \(train) train and \(test) test examples",
                                fix: "choose a fraction that leaves examples on both sides, or a larger --count")
        }
    }
}

/// A generated data set and its description.
public struct GeneratedData: Sendable {
    public var train: [Example]
    public var test: [Example]
    public var meta: DataMeta
    public init(train: [Example], test: [Example], meta: DataMeta) { self.train = train; self.test = test; self.meta = meta }
}

/// The content of meta.json: what was generated and how.
public struct DataMeta: Codable, Equatable, Sendable {
    public var task: String
    public var format: String
    public var split: String
    public var seed: UInt64
    public var generatorVersion: String
    public var rulelensVersion: String
    public var options: [String: String]
    public var counts: [String: Int]
    public var plane: OperandPlane?
    public var squares: [Square]
    /// Rule names by rule_id (study 2 tasks), for labelling probes and plots.
    public var rules: [String]?
    public var spec: TaskSpec

    public init(spec: TaskSpec, trainCount: Int, testCount: Int, plane: OperandPlane?, squares: [Square]) {
        task = spec.task.rawValue; format = spec.format.rawValue; split = spec.split.rawValue
        seed = spec.seed; generatorVersion = TaskSpec.generatorVersion; rulelensVersion = RuleLensVersion.string
        self.spec = spec
        counts = ["train": trainCount, "test": testCount]
        self.plane = plane; self.squares = squares
        switch spec.task {
        case .syllogism: rules = Syllogisms.forms.map(\.label)
        case .mathDerivation: rules = MathDerivation.operators
        case .explanatory: rules = Explanatory.inferenceTypes
        default: rules = nil
        }
        var o: [String: String] = [:]
        switch spec.split {
        case .random: o["train_fraction"] = String(spec.trainFraction)
        case .leaveSquareOut: o["center"] = "\(spec.center.0),\(spec.center.1)"; o["half"] = String(spec.half)
        case .holes: o["holes"] = String(spec.holes); o["hole_half_range"] = "\(spec.holeHalfMin)-\(spec.holeHalfMax)"
        case .length:
            o["train_digits"] = "\(spec.trainDigits.lowerBound)-\(spec.trainDigits.upperBound)"
            o["test_digits"] = "\(spec.testDigits.lowerBound)-\(spec.testDigits.upperBound)"
            o["test_per_digit"] = String(spec.testPerDigit)
        }
        if spec.task == .multiDigitAddition && spec.split == .random {
            o["digits"] = "\(spec.digits.lowerBound)-\(spec.digits.upperBound)"
        }
        if !spec.task.hasPlane { o["count"] = String(spec.resolvedCount) }
        options = o
    }

    enum CodingKeys: String, CodingKey {
        case task, format, split, seed, options, counts, plane, squares, rules, spec
        case generatorVersion = "generator_version"
        case rulelensVersion = "rulelens_version"
    }

    /// Encoded with sorted keys, so the same data set always gives the same bytes.
    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var d = try enc.encode(self)
        d.append(0x0A)
        return d
    }
}

extension TaskSpec {
    /// Parses "1-5" (or "7") for the option named `option`.
    public static func parseRange(_ text: String, option: String) throws -> ClosedRange<Int> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if parts.count == 1, let v = parts[0] { return v...v }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo <= hi else {
            throw RuleLensError("\(option) \"\(text)\" is not a range LOW-HIGH", fix: "write it like \(option) 1-5")
        }
        return lo...hi
    }

    /// Parses "A,B" for the option named `option`.
    public static func parsePair(_ text: String, option: String) throws -> (Int, Int) {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let a = parts[0], let b = parts[1] else {
            throw RuleLensError("\(option) \"\(text)\" is not a point A,B", fix: "write it like \(option) 50,50")
        }
        return (a, b)
    }
}
