#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RuleLensNumerics
import RuleLensStore

/// Where a run writes: each variant in a folder named after its sweep values, and nothing outside `--out`.
///
/// Sweep values are text a spec chooses (`'/../../x'`, a newline, 4,000 characters), so a folder name is made from
/// each value by rule rather than trusted: a value of letters, digits and `- _ . + = , @` (no `..`) of up to 40
/// characters is kept as written (`task-addition_ctx-16`); any other is cut to 31 characters with every other
/// character replaced by `_`, and a hash of the whole value appended (`s-.._.._x+9c3e…`), so two different values
/// never share a name. A name longer than 160 bytes is cut the same way. Every folder begins with its variable's
/// name (an identifier), so it can be neither hidden nor `..`. Two variants with one folder (a combination listed
/// twice) are refused before anything runs, and every path a step writes must resolve inside `--out`.
public enum RunFolders {
    static let keptValueLength = 40
    static let maxNameBytes = 160

    /// The folder name of a variant with these (variable, value) pairs, in the sweep's order.
    public static func name(_ combo: [(key: String, value: String)]) -> String {
        let name = combo.map { "\(cleaned($0.key, keep: 64))-\(part($0.value))" }.joined(separator: "_")
        guard name.utf8.count > maxNameBytes else { return name }
        return prefix(name, bytes: maxNameBytes - 17) + "+" + hash(combo.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
    }

    /// One sweep value as a part of a folder name (see the type's description).
    static func part(_ value: String) -> String {
        if value.count <= keptValueLength, !value.contains(".."), value.allSatisfy(isKept) { return value }
        return cleaned(value, keep: keptValueLength - 9) + "+" + hash(value)
    }

    static func isKept(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || "-_.+=,@".contains(c)) }

    /// The first `keep` characters with each one outside the kept set, and each `..`, made `_`.
    static func cleaned(_ text: String, keep: Int) -> String {
        var out = ""
        for c in text.prefix(keep) { out.append(isKept(c) && !(c == "." && out.last == ".") ? c : "_") }
        return out
    }

    static func prefix(_ text: String, bytes: Int) -> String {
        var out = "", used = 0
        for c in text {
            used += c.utf8.count
            if used > bytes { break }
            out.append(c)
        }
        return out
    }

    static func hash(_ text: String) -> String {
        var f = Fingerprint()
        f.add(text)
        let hex = f.hex
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }

    /// Refuses two variants that would write into one folder.
    static func checkDistinct(_ variants: [Variant], specPath: String) throws {
        var owner: [String: Variant] = [:]
        for v in variants {
            if let first = owner[v.folder] {
                throw RuleLensError("\(specPath): the sweep variants \(first.id) and \(v.id) would both write into the folder \(v.folder)",
                                    fix: first.id == v.id ? "the sweep lists this combination twice: remove one of them"
                                        : "make their values differ (in folder names, characters other than letters, digits and - _ . + = , @ become _)")
            }
            owner[v.folder] = v
        }
    }

    /// Refuses a path a step would write that does not resolve inside the run folder `root` (`..` components and
    /// links in its existing part followed), before anything runs.
    static func checkConfined(_ path: String, under root: String, what: String) throws {
        let resolvedRoot = resolved(root), resolvedPath = resolved(path)
        guard resolvedPath == resolvedRoot || resolvedPath.hasPrefix(resolvedRoot == "/" ? "/" : resolvedRoot + "/") else {
            throw RuleLensError("\(what) \(path), outside the run folder \(root)" + (resolvedPath == path ? "" : " (it resolves to \(resolvedPath))"),
                                fix: "a step writes only inside --out: write paths under ${out}, and do not link folders inside the run folder to elsewhere")
        }
    }

    /// `path` made absolute, with `.` and `..` removed and links in its longest existing part resolved.
    static func resolved(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [String] = []
        for component in absolute.split(separator: "/") {
            if component == "." { continue }
            if component == ".." { _ = parts.popLast() } else { parts.append(String(component)) }
        }
        for end in stride(from: parts.count, through: 1, by: -1) {
            guard let real = realpath("/" + parts[0..<end].joined(separator: "/"), nil) else { continue }
            defer { free(real) }
            let base = String(cString: real)
            let rest = parts[end...].joined(separator: "/")
            return rest.isEmpty ? base : (base == "/" ? "/" : base + "/") + rest
        }
        return "/" + parts.joined(separator: "/")
    }
}
