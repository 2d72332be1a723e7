import Foundation
import RuleLensJobs

/// `data`: generate a task and split (as `rulelens data generate`) into the step folder.
public enum DataStep: RunStep {
    public static let kind = "data"
    public static let summary = "Generate a task and split (train.jsonl, test.jsonl, meta.json), as `rulelens data generate`."
    public static let options: [StepOption] = [
        .init("task", .choice(TaskName.allCases.map(\.rawValue)), "task name", required: true),
        .init("format", .choice(TaskFormat.allCases.map(\.rawValue)), "direct, scratchpad, rule or compact"),
        .init("split", .choice(SplitKind.allCases.map(\.rawValue)), "random, leave-square-out, holes or length"),
        .init("train-fraction", .double, "random split: share in train"),
        .init("center", .string, "leave-square-out centre A,B"),
        .init("half", .int, "leave-square-out half-length L"),
        .init("holes", .int, "holes: number of squares"),
        .init("hole-half", .string, "holes: range of half-lengths, e.g. 10-19"),
        .init("digits", .string, "multi-digit-addition, random split: digit counts"),
        .init("train-digits", .string, "length split: train digit counts"),
        .init("test-digits", .string, "length split: test digit counts"),
        .init("count", .int, "sampled tasks: examples to generate"),
        .init("test-per-digit", .int, "length split: test examples per digit count"),
        .init("seed", .int, "seed"),
    ]

    public static func quick(_ o: inout StepOptions) {
        if let task = try? o.string("task"), let t = TaskName(rawValue: task), !t.hasPlane {
            o.cap("count", 300)
        }
        o.cap("test-per-digit", 20, orSet: false)
    }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "rulelens data generate " + o.flags(options.map(\.name)) + " --out \(dir)"
    }

    /// The task spec these options describe.
    public static func taskSpec(_ o: StepOptions) throws -> TaskSpec {
        var s = TaskSpec(task: try TaskName.named(try o.requiredString("task")),
                         format: try TaskFormat.named(try o.string("format", default: "direct")),
                         split: try SplitKind.named(try o.string("split", default: "random")),
                         seed: UInt64(max(0, try o.int("seed", default: 0))))
        if let f = try o.double("train-fraction") { s.trainFraction = f }
        if let c = try o.string("center") { let (a, b) = try TaskSpec.parsePair(c, option: "center"); s.centerA = a; s.centerB = b }
        if let h = try o.int("half") { s.half = h }
        if let h = try o.int("holes") { s.holes = h }
        if let r = try o.string("hole-half") { let hh = try TaskSpec.parseRange(r, option: "hole-half"); s.holeHalfMin = hh.lowerBound; s.holeHalfMax = hh.upperBound }
        if let r = try o.string("digits") { s.digits = try TaskSpec.parseRange(r, option: "digits") }
        if let r = try o.string("train-digits") { s.trainDigits = try TaskSpec.parseRange(r, option: "train-digits") }
        if let r = try o.string("test-digits") { s.testDigits = try TaskSpec.parseRange(r, option: "test-digits") }
        s.count = try o.int("count")
        if let t = try o.int("test-per-digit") { s.testPerDigit = t }
        try s.validate()
        return s
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let spec = try taskSpec(o)
        let data = try spec.generate()
        try DataSets.write(data, to: ctx.dir, force: true)
        var results: [String: Any] = ["train": data.train.count, "test": data.test.count, "task": spec.task.rawValue,
                                      "format": spec.format.rawValue, "split": spec.split.rawValue, "seed": Int(spec.seed)]
        if !data.meta.squares.isEmpty {
            results["squares"] = data.meta.squares.map { ["center_a": $0.centerA, "center_b": $0.centerB, "half": $0.half] }
        }
        if let rules = data.meta.rules { results["rules"] = rules.count }
        ctx.log("  wrote \(ctx.dir): train \(data.train.count), test \(data.test.count)")
        return StepOutcome(results: RunValue(any: results), files: DataSets.fileNames)
    }
}
