import Foundation
import RuleLensJobs

/// `relabel`: a copy of a dump with new /meta label columns (any JSONL field, or a derived column such as
/// syllogism figure or mood), so probes can ask about labels the dump was not made with.
public enum RelabelStep: RunStep {
    public static let kind = "relabel"
    public static let summary = "Copy a dump and add /meta label columns from any JSONL field or a derived column (figure, mood, carry, digits, answer_length)."
    public static let output = "acts.h5"
    public static let options: [StepOption] = [
        .init("file", .path, "the dump, e.g. ${dump}", required: true),
        .init("data", .path, "the data the dump was made from (a `data` folder or JSONL file)", required: true),
        .init("part", .choice(["train", "test", "all"]), "part of a data folder (default test)"),
        .init("columns", .list, "columns to add: JSONL field names or derived columns", required: true),
        .init("limit", .int, "the dump holds only the first N examples"),
    ]

    public static func quick(_ o: inout StepOptions) { o.cap("limit", 100) }

    public static func commandLine(_ o: StepOptions, dir: String) -> String {
        "(library) Relabel.write(source: \((try? o.string("file")).flatMap { $0 } ?? "?"), columns: "
            + (((try? o.list("columns")) ?? nil) ?? []).joined(separator: ",") + ") → \(dir)/\(output)"
    }

    public static func run(_ o: StepOptions, _ ctx: StepContext) throws -> StepOutcome {
        let data = try o.requiredString("data"), part = try o.string("part", default: "test")
        var isDir: ObjCBool = false
        var lines: [[String: Any]]
        if FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue {
            let parts = part == "all" ? ["train", "test"] : [part]
            lines = try parts.flatMap { try Relabel.readLines(path: (data as NSString).appendingPathComponent("\($0).jsonl")) }
        } else {
            lines = try Relabel.readLines(path: data)
        }
        if let limit = try o.int("limit"), limit < lines.count { lines = Array(lines.prefix(limit)) }
        var columns: [String: [String]] = [:]
        var counts: [String: Any] = [:]
        for name in try o.list("columns") ?? [] {
            let values = try Relabel.column(name, lines: lines, source: data)
            columns[name] = values
            counts[name] = Dictionary(grouping: values, by: { $0 }).mapValues(\.count)
        }
        try Relabel.write(source: try o.requiredString("file"), out: ctx.path(output), columns: columns, lines: lines)
        return StepOutcome(results: RunValue(any: ["examples": lines.count, "classes": counts]), files: [output])
    }
}
