import Foundation
import RuleLensJobs
import RuleLensVerbs

/// Every step kind a spec may use: one per verb, generated from its declaration in RuleLensVerbs.
public enum StepRegistry {
    public static let all: [StepKind] = Verbs.all.map(StepKind.init(verb:))

    public static func step(_ kind: String) -> StepKind? { all.first { $0.kind == kind } }

    public static var kinds: [String] { all.map { $0.kind } }

    /// `rulelens run --list-steps`: each kind, the command it runs, and its summary.
    public static func listing() -> String {
        all.map { k in
            let command = k.verb.map { "rulelens " + $0.commandPath.joined(separator: " ") } ?? "(spec only)"
            return "\(k.kind.padding(toLength: 16, withPad: " ", startingAt: 0)) \(command.padding(toLength: 26, withPad: " ", startingAt: 0)) \(k.summary)"
        }.joined(separator: "\n")
    }

    /// `rulelens run --list-steps --json`: per kind, its command path (null when not a verb), the option the step's
    /// folder is passed as, and the options a spec may set.
    public static func listingJSON() throws -> String {
        let items: [[String: Any]] = all.map { k in
            ["kind": k.kind, "command": k.verb.map { $0.commandPath as Any } ?? NSNull(),
             "output_option": k.verb?.outputOption ?? NSNull(), "options": k.options.map(\.name)]
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: items, options: [.sortedKeys]), as: UTF8.self)
    }

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
