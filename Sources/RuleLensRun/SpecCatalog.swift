import Foundation
import RuleLensJobs
import RuleLensNumerics

/// The specs in a folder (Probes/), for `rulelens run --list`.
public enum SpecCatalog {
    public static func list(dir: String) throws -> [(file: String, spec: ExperimentSpec)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw RuleLensError("cannot list \(dir)", fix: "run from the repository root (specs live in Probes/), or pass --probes DIR")
        }
        return try names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
            let path = (dir as NSString).appendingPathComponent($0)
            return (path, try SpecParser.load(path: path))
        }
    }

    /// Text of `--list`: one block per spec.
    public static func describe(_ specs: [(file: String, spec: ExperimentSpec)]) -> String {
        specs.map { file, s in
            let variants = s.variants.count
            return "\(file)\n  \(s.claim)\n  \(s.steps.count) steps" + (variants > 1 ? " × \(variants) variants" : "")
                + (s.seeds.map { " (\($0.count) seeds)" } ?? "")
                + (s.preconditions.isEmpty ? "" : ", \(s.preconditions.count) precondition\(s.preconditions.count == 1 ? "" : "s")")
                + ", \(s.expects.count) expectations"
        }.joined(separator: "\n")
    }
}
