import ArgumentParser
import RuleLensJobs

/// The options that describe a generated data set: task, format, split, split options, seed.
/// Shared by `rulelens data generate` and (through `DataSourceOptions`) by train and eval.
struct TaskOptions: ParsableArguments {
    @Option(help: "Task: \(TaskName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var task: String?

    @Option(help: "Answer format: direct, scratchpad, rule (scratchpad/rule only for the addition tasks), compact (chickens-rabbits without its fixed words: 134,40= → 27,13).")
    var format: String = "direct"

    @Option(help: "Split: random, leave-square-out, holes, length.")
    var split: String = "random"

    @Option(parsing: .unconditional, help: "random split: share of examples in train.")
    var trainFraction: Double = 0.7

    @Option(help: "leave-square-out: centre A,B in the task's plane (default: 50,50; 56,56 modular; 70,50 chickens-rabbits in legs/2,heads).")
    var center: String?

    @Option(parsing: .unconditional, help: "leave-square-out: half-length L of the square (2L+1 points a side; L=10 → 441 test points).")
    var half: Int = 10

    @Option(parsing: .unconditional, help: "holes: number of random non-overlapping squares.")
    var holes: Int = 3

    @Option(help: "holes: range the half-length of each square is drawn from.")
    var holeHalf: String = "10-19"

    @Option(help: "multi-digit-addition, random split: operand digit counts.")
    var digits: String = "1-5"

    @Option(help: "length split: train digit counts.")
    var trainDigits: String = "1-5"

    @Option(help: "length split: test digit counts.")
    var testDigits: String = "6-15"

    @Option(parsing: .unconditional, help: "Sampled tasks (multi-digit-addition, syllogism, math-derivation, explanatory): examples to generate (length split: train examples).")
    var count: Int?

    @Option(parsing: .unconditional, help: "length split: test examples per digit count.")
    var testPerDigit: Int = 100

    @Option(parsing: .unconditional, help: "Seed (default 0): the same seed and options give byte-identical data (train: also initialisation and data order).")
    var seed: UInt64?

    /// The spec these options describe (nil when no --task was given).
    func spec() throws -> TaskSpec? {
        guard let task else { return nil }
        var s = TaskSpec(task: try TaskName.named(task), format: try TaskFormat.named(format),
                         split: try SplitKind.named(split), seed: seed ?? 0)
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

/// `--data FILE` or `--task/--format/--split/[split options]/--seed`: where train and eval get examples.
struct DataSourceOptions: ParsableArguments {
    @Option(help: "JSONL examples (or a `rulelens data generate` directory); instead of --task.")
    var data: String?

    @OptionGroup(title: "Generated data (instead of --data)")
    var generated: TaskOptions

    /// The library-side data source; `load(.train)` / `load(.test)` give the examples.
    func source() throws -> DataSource {
        let spec = try generated.spec()
        if data != nil && spec != nil {
            throw RuleLensError("both --data and --task were given", fix: "give either --data FILE or --task NAME, not both")
        }
        if data == nil && spec == nil {
            throw RuleLensError("no data given", fix: "give --data FILE.jsonl, or --task NAME [--format F --split S --seed N]")
        }
        return DataSource(file: data, spec: spec)
    }
}
