import ArgumentParser
import RuleLensJobs
import RuleLensNumerics
import RuleLensTasks

extension TaskName: ExpressibleByArgument {}
extension TaskFormat: ExpressibleByArgument {}
extension SplitKind: ExpressibleByArgument {}
extension DataPart: ExpressibleByArgument {}
extension LossOn: ExpressibleByArgument {}

/// The options that describe a generated data set: task, format, split, split options, seed.
/// Shared by `data generate` and (through `DataSourceOptions`) by `train` and `eval`.
public struct TaskOptions: ParsableArguments {
    @Option(help: "Task to generate.") public var task: TaskName?
    @Option(help: "Answer format: direct, scratchpad, rule (scratchpad/rule only for the addition tasks), compact (chickens-rabbits without its fixed words: 134,40= → 27,13).")
    public var format: TaskFormat = .direct
    @Option(help: "Split: random, leave-square-out, holes, length.") public var split: SplitKind = .random
    @Option(parsing: .unconditional, help: "random split: share of examples in train.") public var trainFraction: Double = 0.7
    @Option(help: "leave-square-out: centre A,B in the task's plane (default: 50,50; 56,56 modular; 70,50 chickens-rabbits in legs/2,heads).")
    public var center: String?
    @Option(parsing: .unconditional, help: "leave-square-out: half-length L of the square (2L+1 points a side; L=10 → 441 test points).")
    public var half: Int = 10
    @Option(parsing: .unconditional, help: "holes: number of random non-overlapping squares.") public var holes: Int = 3
    @Option(help: "holes: range the half-length of each square is drawn from.") public var holeHalf: String = "10-19"
    @Option(help: "multi-digit-addition, random split: operand digit counts.") public var digits: String = "1-5"
    @Option(help: "length split: train digit counts.") public var trainDigits: String = "1-5"
    @Option(help: "length split: test digit counts.") public var testDigits: String = "6-15"
    @Option(parsing: .unconditional, help: "Sampled tasks (multi-digit-addition, syllogism, math-derivation, explanatory): examples to generate (length split: train examples).")
    public var count: Int?
    @Option(parsing: .unconditional, help: "length split: test examples per digit count.") public var testPerDigit: Int = 100
    @Option(parsing: .unconditional, help: "Seed (default 0): the same seed and options give byte-identical data (train: also initialisation and data order).")
    public var seed: UInt64?

    public init() {}

    /// The spec these options describe (nil when no --task was given).
    public func spec() throws -> TaskSpec? {
        guard let task else { return nil }
        var s = TaskSpec(task: task, format: format, split: split, seed: seed ?? 0)
        s.trainFraction = trainFraction
        if let center {
            let (a, b) = try TaskSpec.parsePair(center, option: "--center")
            s.centerA = a; s.centerB = b
        }
        s.half = half
        s.holes = holes
        let hh = try TaskSpec.parseRange(holeHalf, option: "--hole-half")
        s.holeHalfMin = hh.lowerBound; s.holeHalfMax = hh.upperBound
        s.digits = try TaskSpec.parseRange(digits, option: "--digits")
        s.trainDigits = try TaskSpec.parseRange(trainDigits, option: "--train-digits")
        s.testDigits = try TaskSpec.parseRange(testDigits, option: "--test-digits")
        s.count = count
        s.testPerDigit = testPerDigit
        try s.validate()
        return s
    }
}

/// `--data FILE|DIR` or `--task/--format/--split/[split options]/--seed`: where train and eval get examples.
public struct DataSourceOptions: ParsableArguments {
    @Option(help: "JSONL examples, or a `rulelens data generate` folder (its train.jsonl/test.jsonl); instead of --task.")
    public var data: InputPath?

    @OptionGroup(title: "Generated data (instead of --data)")
    public var generated: TaskOptions

    public init() {}

    public var given: Bool { data != nil || generated.task != nil }

    /// The library-side data source; `load(.train)` / `load(.test)` give the examples.
    public func source() throws -> DataSource {
        let spec = try generated.spec()
        if data != nil && spec != nil {
            throw RuleLensError("both --data and --task were given", fix: "give either --data FILE or --task NAME, not both")
        }
        if data == nil && spec == nil {
            throw RuleLensError("no data given", fix: "give --data FILE.jsonl, or --task NAME [--format F --split S --seed N]")
        }
        return DataSource(file: data?.path, spec: spec)
    }
}
