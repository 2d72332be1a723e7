import RuleLensNumerics

/// The taxonomy and property knowledge base of Data/explanatory_kb.txt.
public struct KnowledgeBase: Sendable {
    /// child → parent ("a hare is a kind of mammal").
    public var parent: [String: String] = [:]
    /// class → verb phrases stated for it (inherited by its kinds).
    public var classProperties: [String: [String]] = [:]
    /// "if something VP1 then it VP2", in file order.
    public var rules: [(condition: String, consequence: String)] = []
    /// particular thing (with its article) → verb phrases.
    public var facts: [String: [String]] = [:]
    /// Classes and things in file order (for reproducible sampling).
    public var classes: [String] = []
    public var things: [String] = []

    /// Parses the file format documented at the top of Data/explanatory_kb.txt.
    public init(text: String) throws {
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw RuleLensError("line \(n + 1) of the explanatory knowledge base has no \"kind:\", \"prop:\", \"rule:\" or \"fact:\"",
                                    fix: "fix Data/explanatory_kb.txt and rerun Data/embed.sh")
            }
            let kind = String(line[..<colon])
            let body = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let sep = kind == "rule" ? "=>" : "|"
            let parts = body.components(separatedBy: sep).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw RuleLensError("line \(n + 1) of the explanatory knowledge base is not \"\(kind): X \(sep) Y\"",
                                    fix: "fix Data/explanatory_kb.txt and rerun Data/embed.sh")
            }
            func note(_ c: String) { if !classes.contains(c) { classes.append(c) } }
            switch kind {
            case "kind": parent[parts[0]] = parts[1]; note(parts[0]); note(parts[1])
            case "prop": classProperties[parts[0], default: []].append(parts[1]); note(parts[0])
            case "rule": rules.append((parts[0], parts[1]))
            case "fact":
                facts[parts[0], default: []].append(parts[1])
                if !things.contains(parts[0]) { things.append(parts[0]) }
            default:
                throw RuleLensError("line \(n + 1) of the explanatory knowledge base starts with unknown \"\(kind):\"",
                                    fix: "use kind:, prop:, rule: or fact:")
            }
        }
    }

    /// The knowledge base shipped in Data/.
    public static let standard: KnowledgeBase = try! KnowledgeBase(text: EmbeddedData.explanatoryKb)

    /// "a hare", "an animal".
    public static func withArticle(_ noun: String) -> String {
        ("aeiou".contains(noun.first ?? "x") ? "an " : "a ") + noun
    }

    /// Parents, grandparents, … of a class, nearest first.
    public func ancestors(of c: String) -> [String] {
        var out: [String] = []
        var cur = c
        while let p = parent[cur], !out.contains(p) { out.append(p); cur = p }
        return out
    }

    /// Everything true of a class or thing: stated and inherited properties, closed under the rules.
    public func properties(of subject: String) -> [String] {
        var props: [String] = facts[subject] ?? []
        for c in [subject] + ancestors(of: subject) { props += classProperties[c] ?? [] }
        var changed = true
        while changed {
            changed = false
            for r in rules where props.contains(r.condition) && !props.contains(r.consequence) {
                props.append(r.consequence); changed = true
            }
        }
        var seen = Set<String>()
        return props.filter { seen.insert($0).inserted }
    }
}

/// Study 2's explanatory reasoning: EntailmentBank-style single inference steps over the knowledge base,
/// labelled by inference type. Premises are joined by "; ".
public enum Explanatory {
    /// The inference types, in rule_id order.
    public static let inferenceTypes = ["substitution", "property-inheritance", "if-then", "conjunction", "if-then-chain",
                                        "inheritance-if-then"]

    static func step(type: Int, kb: KnowledgeBase, rng: inout SeededRNG) -> Example? {
        func pick<T>(_ xs: [T]) -> T? { xs.isEmpty ? nil : xs[rng.int(below: xs.count)] }
        func subject(_ s: String) -> String { kb.things.contains(s) ? s : KnowledgeBase.withArticle(s) }
        let premises: [String]
        let conclusion: String
        switch inferenceTypes[type] {
        case "substitution":
            // x is a kind of p1; p1 is a kind of p2 (; p2 is a kind of p3) ⊢ x is a kind of p_last
            guard let x = pick(kb.classes) else { return nil }
            let chain = [x] + kb.ancestors(of: x)
            guard chain.count >= 3 else { return nil }
            let steps = min(2 + rng.int(below: 2), chain.count - 1)
            premises = (0..<steps).map { "\(subject(chain[$0])) is a kind of \(chain[$0 + 1])" }
            conclusion = "\(subject(x)) is a kind of \(chain[steps])"
        case "property-inheritance":
            // x is a kind of y; a y has P ⊢ x has P
            guard let x = pick(kb.classes) else { return nil }
            let ups = Array(kb.ancestors(of: x).prefix(2))
            guard let y = pick(ups), let p = pick(kb.classProperties[y] ?? []) else { return nil }
            premises = ["\(subject(x)) is a kind of \(y)", "\(subject(y)) \(p)"]
            conclusion = "\(subject(x)) \(p)"
        case "if-then":
            // if something C then it Q; s C ⊢ s Q
            guard let s = pick(kb.classes + kb.things) else { return nil }
            let props = kb.properties(of: s)
            guard let r = pick(kb.rules.filter { props.contains($0.condition) }) else { return nil }
            premises = ["if something \(r.condition) then it \(r.consequence)", "\(subject(s)) \(r.condition)"]
            conclusion = "\(subject(s)) \(r.consequence)"
        case "conjunction":
            // s P1; s P2 ⊢ s P1 and P2
            guard let s = pick(kb.classes + kb.things) else { return nil }
            let props = kb.properties(of: s)
            guard props.count >= 2, let p1 = pick(props) else { return nil }
            guard let p2 = pick(props.filter { $0 != p1 }) else { return nil }
            premises = ["\(subject(s)) \(p1)", "\(subject(s)) \(p2)"]
            conclusion = "\(subject(s)) \(p1) and \(p2)"
        case "inheritance-if-then":
            // x is a kind of y; a y P; if something P then it Q ⊢ x Q   (two steps composed)
            guard let x = pick(kb.classes) else { return nil }
            let ups = Array(kb.ancestors(of: x).prefix(2))
            guard let y = pick(ups) else { return nil }
            let usable = (kb.classProperties[y] ?? []).filter { p in kb.rules.contains { $0.condition == p } }
            guard let p = pick(usable), let r = pick(kb.rules.filter({ $0.condition == p })) else { return nil }
            premises = ["\(subject(x)) is a kind of \(y)", "\(subject(y)) \(p)", "if something \(p) then it \(r.consequence)"]
            conclusion = "\(subject(x)) \(r.consequence)"
        default:
            // if something A then it B; if something B then it C (; if something C then it D) ⊢ if something A then it D
            guard var rule = pick(kb.rules) else { return nil }
            var chain = [rule]
            let length = 2 + rng.int(below: 2)
            while chain.count < length, let next = pick(kb.rules.filter({ $0.condition == rule.consequence })) {
                chain.append(next); rule = next
            }
            guard chain.count >= 2, chain.last!.consequence != chain[0].condition else { return nil }
            premises = chain.map { "if something \($0.condition) then it \($0.consequence)" }
            conclusion = "if something \(chain[0].condition) then it \(chain.last!.consequence)"
        }
        return example(type: type, premises: premises, conclusion: conclusion)
    }

    /// The example of one inference step: premises joined by "; ", the conclusion as target and answer.
    static func example(type: Int, premises: [String], conclusion: String) -> Example {
        var example = Example(prompt: premises.joined(separator: "; "), target: conclusion, answer: conclusion,
                              rule: inferenceTypes[type], ruleId: type)
        example.sources = SourceKeys.copiedWords(prompt: example.prompt, target: conclusion) { !SourceKeys.explanatoryFixedWords.contains($0) }
        return example
    }

    /// Up to `count` distinct steps, inference types in round-robin order with an equal quota each
    /// (count / number of types, rounded up), so rule classes stay balanced. A type whose distinct instances run out
    /// (the knowledge base is small) stops early, so fewer may come back.
    public static func generate(count: Int, rng: inout SeededRNG, kb: KnowledgeBase = .standard) throws -> [Example] {
        let quota = (count + inferenceTypes.count - 1) / inferenceTypes.count
        var out: [Example] = []
        var seen = Set<String>()
        var made = [Int](repeating: 0, count: inferenceTypes.count)
        var misses = [Int](repeating: 0, count: inferenceTypes.count)
        func open(_ t: Int) -> Bool { made[t] < quota && misses[t] < 20_000 }
        var type = inferenceTypes.count - 1
        while out.count < count && (0..<inferenceTypes.count).contains(where: open) {
            type = (type + 1) % inferenceTypes.count
            guard open(type) else { continue }
            if let e = step(type: type, kb: kb, rng: &rng), seen.insert(e.prompt).inserted {
                out.append(e); made[type] += 1
            } else {
                misses[type] += 1
            }
        }
        return out
    }
}

import Foundation
