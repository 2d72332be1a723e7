import Foundation
import RuleLensJobs
import RuleLensNumerics

/// A spec made concrete for one `--out` folder: per variant, every step with its variables substituted, `--quick`
/// applied and option types checked — so a typo fails before anything runs.
public struct RunPlan {
    public struct PlannedStep {
        public var spec: StepSpec
        public var type: StepKind
        public var options: StepOptions
        /// The step's folder.
        public var dir: String
        /// Its command line, inputs (the files and folders it reads) and run function.
        public var invocation: StepInvocation
        public var inputs: [String] { invocation.inputs }
    }

    public struct PlannedVariant {
        public var variant: Variant
        public var dir: String
        public var steps: [PlannedStep]
    }

    public let spec: ExperimentSpec
    public let outDir: String
    public let quick: Bool
    public var variants: [PlannedVariant]

    /// Plans every variant. Refused here, before anything runs: two variants with one folder, a step folder or an
    /// output path outside `outDir`, and a value that `${…}` substitution grows past `limits`.
    public init(spec: ExperimentSpec, outDir: String, quick: Bool, limits: SpecLimits = .standard) throws {
        self.spec = spec; self.outDir = outDir; self.quick = quick
        variants = []
        let all = spec.variants
        try RunFolders.checkDistinct(all, specPath: spec.path)
        for variant in all where !quick || spec.quickSeeds.contains(variant.vars["seed"] ?? "") || spec.seeds == nil {
            let vdir = variant.folder.isEmpty ? outDir : (outDir as NSString).appendingPathComponent(variant.folder)
            var scope: [String: SpecNode] = ["out": .scalar(vdir, line: 0), "run": .scalar(outDir, line: 0),
                                             "quick": .scalar(quick ? "true" : "false", line: 0)]
            for (k, v) in variant.vars { scope[k] = .scalar(v, line: 0) }
            for (k, v) in spec.vars {
                let chosen = quick ? (spec.quickVars.first { $0.key == k }?.value ?? v) : v
                scope[k] = try RunPlan.bounded(RunPlan.substitute(chosen, scope: scope, path: spec.path, context: "var \(k)", limits: limits),
                                               limits: limits, path: spec.path, context: "var \(k)")
            }
            var steps: [PlannedStep] = []
            for s in spec.steps {
                guard let type = StepRegistry.step(s.kind) else { continue }
                let dir = (vdir as NSString).appendingPathComponent(s.id)
                var values: [String: SpecNode] = [:]
                for (k, v) in s.options {
                    values[k] = try RunPlan.bounded(RunPlan.substitute(v, scope: scope, path: spec.path, context: "step \(s.id), option \(k)", limits: limits),
                                                    limits: limits, path: spec.path, context: "step \(s.id), option \(k)")
                }
                if quick {
                    for (k, v) in s.quickOptions {
                        values[k] = try RunPlan.bounded(RunPlan.substitute(v, scope: scope, path: spec.path, context: "step \(s.id), quick \(k)", limits: limits),
                                                        limits: limits, path: spec.path, context: "step \(s.id), quick \(k)")
                    }
                }
                var options = StepOptions(kind: s.kind, id: s.id, specPath: spec.path, values: values, line: s.line)
                if quick { type.quick(&options) }
                try RunPlan.typeCheck(options, type)
                try RunFolders.checkConfined(dir, under: outDir, what: "\(spec.path) line \(s.line): step \(s.id) would write its folder")
                let invocation = try type.prepare(options, dir)
                for output in invocation.outputs {
                    try RunFolders.checkConfined(output, under: outDir, what: "\(spec.path) line \(s.line): step \(s.id) writes")
                }
                steps.append(PlannedStep(spec: s, type: type, options: options, dir: dir, invocation: invocation))
                let output = type.output.isEmpty ? dir : (dir as NSString).appendingPathComponent(type.output)
                scope[s.id] = .scalar(output, line: s.line)
            }
            variants.append(PlannedVariant(variant: variant, dir: vdir, steps: steps))
        }
    }

    /// `node` when it holds at most `limits.specValues` values and `limits.specBytes` bytes of text: variables that
    /// repeat each other (`a: ${b}${b}`, `c: [${a}, ${a}]`) can otherwise double a value per line of the spec.
    static func bounded(_ node: SpecNode, limits: SpecLimits, path: String, context: String) throws -> SpecNode {
        var values = 0, bytes = 0
        var pending = [node]
        while let n = pending.popLast() {
            values += 1
            switch n {
            case .scalar(let s, _): bytes += s.utf8.count
            case .list(let items, _): pending += items
            case .map(let pairs, _): pending += pairs.map(\.value); bytes += pairs.reduce(0) { $0 + $1.key.utf8.count }
            }
            if values > limits.specValues {
                throw limits.exceeded("spec-values", "\(path): \(context) holds too many values once its ${…} are substituted",
                                      lessFix: "refer to fewer variables in it")
            }
            if bytes > limits.specBytes {
                throw limits.exceeded("spec-bytes", "\(path): \(context) is too long once its ${…} are substituted",
                                      lessFix: "refer to fewer variables in it")
            }
        }
        return node
    }

    /// The plan in words: each variant's folder and each step's command line.
    public var outline: [String] {
        ["run \(spec.name): \(variants.count) variant\(variants.count == 1 ? "" : "s") × \(spec.steps.count) steps → \(outDir)"]
            + variants.flatMap { v in
                ["variant \(v.variant.id): \(v.dir)"] + v.steps.map { "  \($0.spec.id): " + $0.invocation.command.replacingOccurrences(of: "\n", with: " ") }
            }
    }

    /// Replaces `${name}` in scalars. A scalar that is exactly `${name}` takes the variable's whole value (a list stays a list).
    static func substitute(_ node: SpecNode, scope: [String: SpecNode], path: String, context: String,
                           limits: SpecLimits = .standard) throws -> SpecNode {
        switch node {
        case .list(let items, let line):
            return .list(try items.map { try substitute($0, scope: scope, path: path, context: context, limits: limits) }, line: line)
        case .map(let pairs, let line):
            return .map(try pairs.map { ($0.key, try substitute($0.value, scope: scope, path: path, context: context, limits: limits)) }, line: line)
        case .scalar(let text, let line):
            guard text.contains("${") else { return node }
            if text.hasPrefix("${"), text.hasSuffix("}"), text.dropFirst(2).dropLast().allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                let name = String(text.dropFirst(2).dropLast())
                guard let v = scope[name] else { throw unknown(name, line: line, scope: scope, path: path, context: context) }
                switch v {
                case .scalar(let s, _): return .scalar(s, line: line)
                default: return v
                }
            }
            var out = ""
            var rest = Substring(text)
            while let start = rest.range(of: "${") {
                out += rest[..<start.lowerBound]
                guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                    throw RuleLensError("\(path) line \(line): \(context): unterminated ${ in \(text)", fix: "close it: ${name}")
                }
                let name = String(rest[start.upperBound..<end])
                guard let v = scope[name] else { throw unknown(name, line: line, scope: scope, path: path, context: context) }
                out += v.commandLineText
                if out.utf8.count > limits.specBytes {
                    throw limits.exceeded("spec-bytes", "\(path) line \(line): \(context) is too long once its ${…} are substituted",
                                          lessFix: "refer to fewer variables in it")
                }
                rest = rest[rest.index(after: end)...]
            }
            out += rest
            return .scalar(out, line: line)
        }
    }

    static func unknown(_ name: String, line: Int, scope: [String: SpecNode], path: String, context: String) -> RuleLensError {
        let hint = StepRegistry.closest(name, in: Array(scope.keys)).map { " (did you mean ${\($0)}?)" } ?? ""
        return RuleLensError("\(path) line \(line): \(context): unknown variable ${\(name)}\(hint)",
                             fix: "declare it under vars: or sweep:, or name an earlier step's id (known here: \(scope.keys.sorted().joined(separator: ", ")))")
    }

    static func typeCheck(_ o: StepOptions, _ type: StepKind) throws {
        for opt in type.options {
            guard o.has(opt.name) else { continue }
            switch opt.type {
            case .bool: if try o.string(opt.name) != "" { _ = try o.bool(opt.name) }
            case .choice(let allowed):
                let v = try o.string(opt.name) ?? ""
                guard v.isEmpty || allowed.contains(v) else {   // empty: the option is left out
                    throw RuleLensError(o.problem(opt.name, "\(v) is not one of \(allowed.joined(separator: ", "))"),
                                        fix: "write \(opt.name): \(allowed[0]) (or another of those)")
                }
            case .string, .list: break
            }
        }
    }
}
