import Foundation

/// A YAML value as written in a spec, with the line it is on (for errors).
public indirect enum SpecNode: Sendable {
    case scalar(String, line: Int)
    case list([SpecNode], line: Int)
    case map([(key: String, value: SpecNode)], line: Int)

    public var line: Int {
        switch self {
        case .scalar(_, let l), .list(_, let l), .map(_, let l): return l
        }
    }

    public var scalar: String? { if case .scalar(let s, _) = self { return s } else { return nil } }

    /// The node as plain JSON-like text for fingerprints and the report.
    public var runValue: RunValue {
        switch self {
        case .scalar(let s, _): return .string(s)
        case .list(let items, _): return .array(items.map(\.runValue))
        case .map(let pairs, _): return .object(Dictionary(pairs.map { ($0.key, $0.value.runValue) }, uniquingKeysWith: { a, _ in a }))
        }
    }

    /// The node as the value of a command-line option: scalars as they are, lists joined by commas.
    public var commandLineText: String {
        switch self {
        case .scalar(let s, _): return s
        case .list(let items, _): return items.map(\.commandLineText).joined(separator: ",")
        case .map(let pairs, _): return pairs.map { "\($0.key)=\($0.value.commandLineText)" }.joined(separator: ",")
        }
    }
}

/// One step as written: `- KIND: {id: ID, option: value, …}`.
public struct StepSpec: Sendable {
    public var kind: String
    public var id: String
    public var options: [(key: String, value: SpecNode)]
    /// Options replaced under `--quick` (the step's own `quick:` map).
    public var quickOptions: [(key: String, value: SpecNode)]
    public var line: Int
}

/// One `expect:` item: an expression and, optionally, why it is expected.
public struct ExpectSpec: Sendable {
    public var text: String
    public var expression: Expression
    public var why: String?
    public var line: Int
    /// A precondition's id (`p1`, `p2`, … unless given), which expectations name in `needs:`.
    public var id: String? = nil
    /// The preconditions an expectation depends on (nil: every one; empty: none).
    public var needs: [String]? = nil
}

/// A declarative experiment (Probes/NAME.yaml): the claim, variables, a sweep, steps and expectations.
public struct ExperimentSpec: Sendable {
    public var name: String
    public var claim: String
    public var study: String?
    public var description: String?
    public var path: String
    /// `vars:` in order (values may be scalars or lists).
    public var vars: [(key: String, value: SpecNode)]
    /// `quick:` replacements of vars under `--quick`.
    public var quickVars: [(key: String, value: SpecNode)]
    /// `sweep:` variable → values; the run has one variant per combination (in order, the first variable slowest).
    public var sweep: [(key: String, values: [String])]
    /// `sweep:` written as a list of cases (`- {task: addition, ctx: 16}`): exactly these variants, in order.
    public var cases: [[(key: String, value: String)]]? = nil
    public var steps: [StepSpec]
    public var expects: [ExpectSpec]
    /// The YAML text the spec was read from (its fingerprint goes into results.json).
    public var source: String
    /// `preconditions:`: checks that must hold for the expectations to mean anything (Verdict.swift).
    public var preconditions: [ExpectSpec] = []
    /// `deviations:`: how this experiment departs from the study.
    public var deviations: [Deviation] = []
    /// `study:` as a mapping: the study's setting and headline number.
    public var studyDetails: StudySpec? = nil
    /// `seeds:`: the seed values; the sweep has them as its last variable, `seed` (nil without the key).
    public var seeds: [String]? = nil
}

/// One point of the sweep: its id (`task=addition,split=random`, or `default`) and variable values.
public struct Variant: Sendable, Equatable {
    public var id: String
    public var vars: [String: String]
    /// Folder name under the run's --out ("" for a spec without a sweep); made safe by `RunFolders.name`.
    public var folder: String
}

extension ExperimentSpec {
    /// The seeds a `--quick` run keeps: the first two (an interval needs two values).
    public var quickSeeds: [String] { Array((seeds ?? []).prefix(2)) }

    /// Every combination of the sweep's values (one variant when there is no sweep).
    public var variants: [Variant] {
        var combos: [[(String, String)]] = [[]]
        if let cases {
            // In the sweep's order of variables, whatever order a case writes them in (one combination, one folder).
            combos = cases.map { c in sweep.map { k in (k.key, c.first { $0.key == k.key }?.value ?? "") } }
        } else {
            guard !sweep.isEmpty else { return [Variant(id: "default", vars: [:], folder: "")] }
            for (key, values) in sweep {
                combos = combos.flatMap { prefix in values.map { prefix + [(key, $0)] } }
            }
        }
        return combos.map { combo in
            let id = combo.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            let folder = RunFolders.name(combo.map { (key: $0.0, value: $0.1) })
            return Variant(id: id, vars: Dictionary(combo, uniquingKeysWith: { a, _ in a }), folder: folder)
        }
    }
}
