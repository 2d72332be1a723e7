import Foundation
import RuleLensJobs

/// Every step kind a spec may use. A new kind is one file in Steps/ plus one entry here.
public enum StepRegistry {
    public static let all: [RunStep.Type] = [
        DataStep.self, TrainStep.self, RandomInitStep.self, EvalStep.self,
        DumpStep.self, RelabelStep.self, ProbeStep.self, NTKStep.self, RetrieveStep.self, AblateStep.self, PatchStep.self, LensStep.self,
        VAETrainStep.self,
    ]

    public static func step(_ kind: String) -> RunStep.Type? { all.first { $0.kind == kind } }

    public static var kinds: [String] { all.map { $0.kind } }

    /// The closest known name (edit distance), for "did you mean" fixes.
    static func closest(_ name: String, in names: [String]) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var prev = row[0]; row[0] = i
                for j in 1...max(1, b.count) where !b.isEmpty {
                    let cur = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                    prev = cur
                }
            }
            return a.isEmpty ? b.count : row[b.count]
        }
        guard let best = names.min(by: { distance(name, $0) < distance(name, $1) }) else { return nil }
        return distance(name, best) <= max(2, name.count / 3) ? best : nil
    }
}
