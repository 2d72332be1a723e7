import Foundation
import RuleLensJobs
import Yams
import RuleLensNumerics

/// Reads Probes/NAME.yaml into an `ExperimentSpec`. Every error names the file, the line and the key.
public enum SpecParser {
    static let topKeys = ["name", "claim", "study", "description", "deviations", "vars", "quick", "sweep", "seeds", "steps",
                          "preconditions", "expect"]

    /// Reads and parses the spec file at `path`: a regular file within `limits.specBytes` (a folder, a device or a
    /// FIFO is refused before it is read).
    public static func load(path: String, limits: SpecLimits = .standard) throws -> ExperimentSpec {
        let data = try SpecFiles.contents(path, what: "spec", limit: limits.specBytes, limitName: "spec-bytes", limits: limits,
                                          fix: "name a spec file, e.g. Probes/demo.yaml (`rulelens run --list` lists them)")
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuleLensError("\(path) is not UTF-8 text", fix: "save the spec as UTF-8 YAML")
        }
        return try parse(text, path: path, limits: limits)
    }

    /// Parses a spec's text. Its size, its YAML aliases, its sweep and its expressions are bounded by `limits`
    /// before anything of that size is built.
    public static func parse(_ text: String, path: String, limits: SpecLimits = .standard) throws -> ExperimentSpec {
        guard text.utf8.count <= limits.specBytes else {
            throw limits.exceeded("spec-bytes", "\(path) has \(text.utf8.count) bytes", lessFix: "check that it is the right file")
        }
        try SpecYAMLBounds.check(text, path: path, limits: limits)
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw RuleLensError("\(path): not valid YAML (\(yamlProblem(e)))", fix: "fix the YAML syntax at that line (indentation, a missing ':' or quote)")
        } catch {
            throw RuleLensError("\(path): not valid YAML (\(error))", fix: "fix the YAML syntax")
        }
        guard let root, case .map(let top, _) = convert(root) else {
            throw RuleLensError("\(path): a spec is a YAML mapping (name:, claim:, steps:, …)", fix: "start from one of the specs in Probes/")
        }
        func err(_ line: Int, _ problem: String, _ fix: String) -> RuleLensError {
            RuleLensError("\(path) line \(line): \(problem)", fix: fix)
        }
        var seen = Set<String>()
        for (key, node) in top {
            guard topKeys.contains(key) else {
                let hint = StepRegistry.closest(key, in: topKeys).map { " (did you mean \($0)?)" } ?? ""
                throw err(node.line, "unknown key \(key)\(hint)", "the keys of a spec are: \(topKeys.joined(separator: ", "))")
            }
            guard seen.insert(key).inserted else { throw err(node.line, "key \(key) appears twice", "keep one \(key):") }
        }
        func value(_ key: String) -> SpecNode? { top.first { $0.key == key }?.value }
        func requiredText(_ key: String) throws -> String {
            guard let node = value(key) else { throw err(1, "missing field \(key)", "add `\(key): …` at the top of the spec") }
            guard let s = node.scalar, !s.isEmpty else { throw err(node.line, "\(key) must be text", "write `\(key): …` as one line of text") }
            return s
        }
        func mapPairs(_ key: String) throws -> [(key: String, value: SpecNode)] {
            guard let node = value(key) else { return [] }
            if case .scalar("", _) = node { return [] }
            guard case .map(let pairs, _) = node else { throw err(node.line, "\(key) must be a mapping (name: value)", "write `\(key):` followed by indented `name: value` lines") }
            for (k, _) in pairs where !isIdentifier(k) {
                throw err(node.line, "\(key) name \(k) is not a plain identifier", "use up to 64 letters, digits and _ (it is referred to as ${\(k)})")
            }
            return pairs
        }

        // (`study:` may also be a mapping, read by VerdictSpecParser.study.)
        for key in ["description"] {
            if let node = value(key), node.scalar == nil {
                throw err(node.line, "\(key) must be text", "write `\(key): …` as text (a list or a mapping is not shown anywhere)")
            }
        }
        let name = try requiredText("name")
        let claim = try requiredText("claim")
        let vars = try mapPairs("vars")
        let quickVars = try mapPairs("quick")
        for (k, v) in quickVars where !vars.contains(where: { $0.key == k }) {
            throw err(v.line, "quick replaces \(k), which is not in vars", "declare \(k) under vars: first")
        }
        var sweep: [(key: String, values: [String])] = []
        var cases: [[(key: String, value: String)]]? = nil
        if let node = value("sweep"), case .list(let items, _) = node {
            guard items.count <= limits.variants else {
                throw limits.exceeded("variants", "\(path) line \(node.line): the sweep lists \(items.count) cases", lessFix: "list fewer cases")
            }
            // A list of cases: each a mapping of variables to values (the same variables in every case).
            var list: [[(key: String, value: String)]] = []
            for item in items {
                guard case .map(let pairs, _) = item, !pairs.isEmpty, pairs.allSatisfy({ $0.value.scalar != nil }) else {
                    throw err(item.line, "a sweep case is a mapping of variables to values", "write `- {task: addition, ctx: 16}`")
                }
                for (k, v) in pairs where vars.contains(where: { $0.key == k }) || !isIdentifier(k) {
                    throw err(v.line, "sweep variable \(k) is also a var (or not an identifier)", "keep it in one place; use up to 64 letters, digits and _")
                }
                if let first = list.first, Set(first.map(\.key)) != Set(pairs.map(\.key)) {
                    throw err(item.line, "every sweep case must set the same variables (\(first.map(\.key).joined(separator: ", ")))", "add the missing ones")
                }
                list.append(pairs.map { ($0.key, $0.value.scalar!) })
            }
            guard !list.isEmpty else { throw err(node.line, "sweep is an empty list", "give at least one case") }
            cases = list
            for (k, _) in list[0] {
                var values: [String] = []
                for c in list { let v = c.first { $0.key == k }!.value; if !values.contains(v) { values.append(v) } }
                sweep.append((k, values))
            }
        } else {
          for (k, v) in try mapPairs("sweep") {
            guard case .list(let items, _) = v, !items.isEmpty, items.allSatisfy({ $0.scalar != nil }) else {
                throw err(v.line, "sweep \(k) must be a non-empty list of values", "write `\(k): [a, b, c]`")
            }
            if vars.contains(where: { $0.key == k }) { throw err(v.line, "\(k) is both a var and a sweep variable", "keep it in one place") }
            sweep.append((k, items.map { $0.scalar! }))
          }
        }

        // `seeds:` is the sweep's last (fastest-varying) variable, `seed`: the steps run once per seed, as ${seed}.
        let seeds = try VerdictSpecParser.seeds(value("seeds"), limits: limits, path: path, err)
        if let seeds {
            if let clash = vars.first(where: { $0.key == "seed" })?.value ?? (sweep.contains { $0.key == "seed" } ? value("sweep") : nil) {
                throw err(clash.line, "the spec has seeds: and also a variable named seed", "drop the variable: seeds: sets ${seed} in each run")
            }
            if let cases, cases.count.multipliedReportingOverflow(by: seeds.count).partialValue > limits.variants
                || cases.count.multipliedReportingOverflow(by: seeds.count).overflow {
                throw limits.exceeded("variants", "\(path): \(cases.count) cases × \(seeds.count) seeds is more than the variants allowed",
                                      lessFix: "run fewer seeds or cases")
            }
            sweep.append(("seed", seeds))
            cases = cases?.flatMap { c in seeds.map { c + [("seed", $0)] } }
        }
        if let node = value("sweep") ?? value("seeds"), cases == nil {
            let sizes = sweep.map(\.values.count)
            let total = sizes.reduce(1) { total, n in
                let (product, overflow) = total.multipliedReportingOverflow(by: n)
                return overflow ? Int.max : product
            }
            guard total <= limits.variants else {
                let count = total == Int.max ? "more than \(Int.max)" : String(total)
                throw limits.exceeded("variants", "\(path) line \(node.line): the sweep makes \(count) variants"
                                      + (sizes.count > 1 ? " (\(sizes.map(String.init).joined(separator: " × ")))" : ""),
                                      lessFix: "sweep fewer values, or list just the cases you want (sweep: [{a: 1, b: 2}, …])")
            }
        }

        guard let stepsNode = value("steps") else { throw err(1, "missing field steps", "add `steps:` with a list of steps such as `- data: {task: addition}`") }
        guard case .list(let stepItems, _) = stepsNode, !stepItems.isEmpty else {
            throw err(stepsNode.line, "steps must be a non-empty list", "write each step as `- KIND: {option: value}` (kinds: \(StepRegistry.kinds.joined(separator: ", ")))")
        }
        var steps: [StepSpec] = []
        var ids = Set<String>()
        for item in stepItems {
            guard case .map(let pairs, let line) = item, pairs.count == 1 else {
                throw err(item.line, "a step is one `KIND: {options}` entry", "write e.g. `- train: {data: ${data}, steps: 2000}`")
            }
            let (kind, body) = pairs[0]
            guard let type = StepRegistry.step(kind) else {
                let hint = StepRegistry.closest(kind, in: StepRegistry.kinds).map { " (did you mean \($0)?)" } ?? ""
                throw err(line, "unknown step \(kind)\(hint)", "steps are: \(StepRegistry.kinds.joined(separator: ", "))")
            }
            var options: [(key: String, value: SpecNode)] = []
            switch body {
            case .map(let p, _): options = p
            case .scalar("", _): options = []
            default: throw err(body.line, "the options of step \(kind) must be a mapping", "write `- \(kind): {option: value, …}`")
            }
            var id = kind.replacingOccurrences(of: "-", with: "_")
            var quick: [(key: String, value: SpecNode)] = []
            var kept: [(key: String, value: SpecNode)] = []
            let known = type.options.map(\.name)
            for (key, v) in options {
                switch key {
                case "id":
                    guard let s = v.scalar, isIdentifier(s) else {
                        throw err(v.line, "step id \(v.commandLineText) is not a plain identifier", "use up to 64 letters, digits and _ (expectations read it as ID.key)")
                    }
                    id = s
                case "quick":
                    guard case .map(let q, _) = v else { throw err(v.line, "quick of step \(kind) must be a mapping", "write `quick: {steps: 50}`") }
                    for (qk, qv) in q where !known.contains(qk) {
                        throw err(qv.line, "unknown option \(qk) for step \(kind) (in quick)", "options of \(kind): \(known.joined(separator: ", "))")
                    }
                    quick = q
                default:
                    if key == type.verb?.outputOption {
                        throw err(v.line, "step \(kind) cannot set \(key): the step's folder is its --\(key)",
                                  "drop `\(key):`; later steps read the step's output as ${\(id)}")
                    }
                    guard known.contains(key) else {
                        let hint = StepRegistry.closest(key, in: known).map { " (did you mean \($0)?)" } ?? ""
                        throw err(v.line, "unknown option \(key) for step \(kind)\(hint)", "options of \(kind): \(known.joined(separator: ", "))")
                    }
                    if kept.contains(where: { $0.key == key }) { throw err(v.line, "option \(key) appears twice in step \(id)", "keep one") }
                    kept.append((key, v))
                }
            }
            for o in type.options where o.required && !kept.contains(where: { $0.key == o.name }) {
                throw err(line, "step \(kind) needs option \(o.name) (\(o.help))", "add `\(o.name): …` to the step")
            }
            guard ids.insert(id).inserted else {
                throw err(line, "two steps have the id \(id)", "give one of them `id: another_name` (expectations read results as ID.key)")
            }
            if vars.contains(where: { $0.key == id }) || sweep.contains(where: { $0.key == id }) || id == "out" {
                throw err(line, "step id \(id) is also a variable name", "rename the step (`id: …`) or the variable")
            }
            // A step's folder is OUT/ID (without a sweep), beside the report's OUT/report: the two must not meet.
            if id == "report" {
                throw err(line, "step id report would share its folder with the run's report (OUT/report)", "give the step another id (`id: …`)")
            }
            steps.append(StepSpec(kind: kind, id: id, options: kept, quickOptions: quick, line: line))
        }

        var spec = ExperimentSpec(name: name, claim: claim, study: nil, description: value("description")?.scalar,
                                  path: path, vars: vars, quickVars: quickVars, sweep: sweep, cases: cases, steps: steps, expects: [],
                                  source: text, deviations: try VerdictSpecParser.deviations(value("deviations"), err), seeds: seeds)
        // Checks are read against the variants: which sweep variables (and seeds) each path leaves open.
        let space = spec.axisSpace
        spec.preconditions = try VerdictSpecParser.checks(value("preconditions"), what: "preconditions", allowedKeys: ["why", "id"],
                                                          steps: steps, sweep: sweep, space: space, limits: limits, path: path, err)
        for i in spec.preconditions.indices where spec.preconditions[i].id == nil { spec.preconditions[i].id = "p\(i + 1)" }
        if let twice = Dictionary(grouping: spec.preconditions, by: { $0.id! }).first(where: { $0.value.count > 1 }) {
            throw err(twice.value[1].line, "two preconditions have the id \(twice.key)", "give each its own `id:`")
        }
        spec.expects = try VerdictSpecParser.checks(value("expect"), what: "expect", allowedKeys: ["why", "needs"],
                                                    steps: steps, sweep: sweep, space: space, limits: limits, path: path, err)
        try VerdictSpecParser.checkNeeds(spec.expects, preconditions: spec.preconditions, err)
        (spec.study, spec.studyDetails) = try VerdictSpecParser.study(value("study"), steps: steps, sweep: sweep, space: space, err)
        return spec
    }

    /// Letters, digits and `_`, not starting with a digit, at most 64 characters (ids and variables name folders).
    static func isIdentifier(_ s: String) -> Bool {
        guard let f = s.first, f.isLetter || f == "_", s.count <= 64 else { return false }
        return s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    static func convert(_ node: Yams.Node) -> SpecNode {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let s):
            return .scalar(node.null != nil && s.string != "null" ? "" : s.string, line: line)
        case .sequence(let seq):
            return .list(seq.map(convert), line: line)
        case .mapping(let map):
            return .map(map.map { (key: $0.key.string ?? "", value: convert($0.value)) }, line: line)
        case .alias:
            return .scalar("", line: line)
        }
    }

    static func yamlProblem(_ e: YamlError) -> String {
        let text = String(describing: e)
        return text.split(separator: "\n").first.map(String.init) ?? text
    }
}
