import RuleLensNumerics

/// The tasks RuleLens can generate. Raw values are the CLI names scripts rely on.
public enum TaskName: String, CaseIterable, Codable, Sendable {
    case addition
    case modularAddition = "modular-addition"
    case base9Addition = "base9-addition"
    case linearRegression = "linear-regression"
    case chickensRabbits = "chickens-rabbits"
    case multiDigitAddition = "multi-digit-addition"
    case syllogism
    case mathDerivation = "math-derivation"
    case explanatory

    /// Tasks whose examples cover a full integer (a, b) grid (study 1): the ones with a plane,
    /// leave-square-out and holes splits, and accuracy heatmaps.
    public var hasPlane: Bool {
        switch self {
        case .addition, .modularAddition, .base9Addition, .linearRegression, .chickensRabbits: return true
        default: return false
        }
    }

    /// Tasks whose examples carry a rule label from a fixed list (study 2).
    public var isRuleTask: Bool { self == .syllogism || self == .mathDerivation || self == .explanatory }

    /// Tasks with a digit-by-digit addition inside, so the scratchpad and rule formats are defined.
    public var hasDigitTrace: Bool {
        switch self {
        case .addition, .modularAddition, .base9Addition, .multiDigitAddition: return true
        default: return false
        }
    }

    /// The answer formats defined for this task: `direct` everywhere, `scratchpad` and `rule` where there is a
    /// digit-by-digit addition, `compact` for the word problem (chickens and rabbits).
    public var formats: [TaskFormat] {
        if hasDigitTrace { return [.direct, .scratchpad, .rule] }
        if self == .chickensRabbits { return [.direct, .compact] }
        return [.direct]
    }

    public static func named(_ name: String) throws -> TaskName {
        guard let t = TaskName(rawValue: name) else {
            throw RuleLensError("unknown task \"\(name)\"\(closest(name, in: allCases.map(\.rawValue)))",
                                fix: "use one of: " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return t
    }
}

/// How the answer is written in the target.
public enum TaskFormat: String, CaseIterable, Codable, Sendable {
    /// The bare answer (`40+47=` → `87`).
    case direct
    /// The digit-by-digit trace with a carry flag, then the bare answer on the last line.
    case scratchpad
    /// Rule-following (RFFT): the digit loop's code in the prompt, its line-by-line execution in the target,
    /// then the bare answer on the last line.
    case rule
    /// The word problem's numbers without its fixed words (chickens and rabbits: `134,40=` → `27,13`, legs and
    /// heads in, rabbits and chickens out). The same plane, split and answers as `direct` at ~1/15 of the tokens;
    /// the published ~190-character text stays the `direct` form.
    case compact

    public static func named(_ name: String) throws -> TaskFormat {
        guard let f = TaskFormat(rawValue: name) else {
            throw RuleLensError("unknown format \"\(name)\"\(closest(name, in: allCases.map(\.rawValue)))",
                                fix: "use one of: " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return f
    }
}

/// How examples are divided into train and test.
public enum SplitKind: String, CaseIterable, Codable, Sendable {
    case random
    case leaveSquareOut = "leave-square-out"
    case holes
    case length

    public static func named(_ name: String) throws -> SplitKind {
        guard let s = SplitKind(rawValue: name) else {
            throw RuleLensError("unknown split \"\(name)\"\(closest(name, in: allCases.map(\.rawValue)))",
                                fix: "use one of: " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return s
    }
}

/// " (did you mean X?)" for the nearest name by edit distance, or "" when nothing is close.
func closest(_ name: String, in names: [String]) -> String {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]; row[0] = i
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }
    let scored = names.map { ($0, distance(Array(name.lowercased()), Array($0))) }.min { $0.1 < $1.1 }
    guard let best = scored, best.1 <= max(3, name.count / 2) else { return "" }
    return " (did you mean \(best.0)?)"
}
