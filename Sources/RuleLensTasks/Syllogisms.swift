import RuleLensNumerics

/// One valid categorical syllogism form: mood (the statement types of major premise, minor premise and
/// conclusion) and figure (where the middle term sits).
public struct SyllogismForm: Sendable, Equatable {
    public let name: String
    /// Three letters of A (All X are Y), E (No X are Y), I (Some X are Y), O (Some X are not Y):
    /// major premise, minor premise, conclusion.
    public let mood: String
    /// 1: M-P, S-M · 2: P-M, S-M · 3: M-P, M-S · 4: P-M, M-S (major first, minor second; conclusion S-P).
    public let figure: Int
    /// The term that must be non-empty for the form to be valid (existential import), or nil.
    public let needsNonEmpty: Character?

    /// The label used as the example's `rule`, e.g. "Barbara AAA-1".
    public var label: String { "\(name) \(mood)-\(figure)" }
}

/// Study 2's syllogistic reasoning: the 24 valid forms instantiated with terms from Data/syllogism_terms.txt.
public enum Syllogisms {
    /// The 24 valid forms, in the traditional order by figure; rule_id is the index here.
    public static let forms: [SyllogismForm] = [
        .init(name: "Barbara", mood: "AAA", figure: 1, needsNonEmpty: nil),
        .init(name: "Celarent", mood: "EAE", figure: 1, needsNonEmpty: nil),
        .init(name: "Darii", mood: "AII", figure: 1, needsNonEmpty: nil),
        .init(name: "Ferio", mood: "EIO", figure: 1, needsNonEmpty: nil),
        .init(name: "Barbari", mood: "AAI", figure: 1, needsNonEmpty: "S"),
        .init(name: "Celaront", mood: "EAO", figure: 1, needsNonEmpty: "S"),
        .init(name: "Cesare", mood: "EAE", figure: 2, needsNonEmpty: nil),
        .init(name: "Camestres", mood: "AEE", figure: 2, needsNonEmpty: nil),
        .init(name: "Festino", mood: "EIO", figure: 2, needsNonEmpty: nil),
        .init(name: "Baroco", mood: "AOO", figure: 2, needsNonEmpty: nil),
        .init(name: "Cesaro", mood: "EAO", figure: 2, needsNonEmpty: "S"),
        .init(name: "Camestros", mood: "AEO", figure: 2, needsNonEmpty: "S"),
        .init(name: "Darapti", mood: "AAI", figure: 3, needsNonEmpty: "M"),
        .init(name: "Disamis", mood: "IAI", figure: 3, needsNonEmpty: nil),
        .init(name: "Datisi", mood: "AII", figure: 3, needsNonEmpty: nil),
        .init(name: "Felapton", mood: "EAO", figure: 3, needsNonEmpty: "M"),
        .init(name: "Bocardo", mood: "OAO", figure: 3, needsNonEmpty: nil),
        .init(name: "Ferison", mood: "EIO", figure: 3, needsNonEmpty: nil),
        .init(name: "Bramantip", mood: "AAI", figure: 4, needsNonEmpty: "P"),
        .init(name: "Camenes", mood: "AEE", figure: 4, needsNonEmpty: nil),
        .init(name: "Dimaris", mood: "IAI", figure: 4, needsNonEmpty: nil),
        .init(name: "Fesapo", mood: "EAO", figure: 4, needsNonEmpty: "M"),
        .init(name: "Fresison", mood: "EIO", figure: 4, needsNonEmpty: nil),
        .init(name: "Camenos", mood: "AEO", figure: 4, needsNonEmpty: "S"),
    ]

    /// The term list of Data/syllogism_terms.txt.
    public static let terms: [String] = EmbeddedData.syllogismTerms.split(separator: "\n")
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }

    /// "All X are Y." and its three siblings.
    public static func statement(_ type: Character, _ x: String, _ y: String) -> String {
        switch type {
        case "A": return "All \(x) are \(y)."
        case "E": return "No \(x) are \(y)."
        case "I": return "Some \(x) are \(y)."
        default: return "Some \(x) are not \(y)."
        }
    }

    /// One instance: prompt = minor premise then major premise (as in PAPERS.md's "All A are B. All B are C."),
    /// target = the conclusion about S and P.
    public static func instance(form: SyllogismForm, ruleId: Int, s: String, m: String, p: String) -> Example {
        let mood = Array(form.mood)
        let (majorX, majorY) = form.figure == 1 || form.figure == 3 ? (m, p) : (p, m)
        let (minorX, minorY) = form.figure == 1 || form.figure == 2 ? (s, m) : (m, s)
        let prompt = statement(mood[1], minorX, minorY) + " " + statement(mood[0], majorX, majorY)
        let conclusion = statement(mood[2], s, p)
        var e = Example(prompt: prompt, target: conclusion, answer: conclusion, rule: form.label, ruleId: ruleId)
        e.sources = SourceKeys.copiedWords(prompt: prompt, target: conclusion) { $0 == s || $0 == p }   // the terms; quantifiers are fixed
        return e
    }

    /// `count` distinct instances, forms in round-robin order so every form is equally represented.
    /// A weakened form (e.g. Barbari) shares its premises with its strong form (Barbara): the same prompt
    /// has two valid conclusions, told apart only by the rule label.
    public static func generate(count: Int, rng: inout SeededRNG) throws -> [Example] {
        guard terms.count >= 3 else {
            throw RuleLensError("Data/syllogism_terms.txt holds fewer than 3 terms", fix: "add terms and rerun Data/embed.sh")
        }
        var out: [Example] = []
        var seen = Set<String>()
        var attempts = 0
        while out.count < count && attempts < 50 * count {
            attempts += 1
            let id = out.count % forms.count
            var picked: [String] = []
            while picked.count < 3 {
                let t = terms[rng.int(below: terms.count)]
                if !picked.contains(t) { picked.append(t) }
            }
            let e = instance(form: forms[id], ruleId: id, s: picked[0], m: picked[1], p: picked[2])
            if seen.insert(e.prompt + "\n" + e.target).inserted { out.append(e) }
        }
        return out
    }
}

import Foundation
