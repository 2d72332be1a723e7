import Foundation
import RuleLensNumerics

/// An error every rank reached together (the same diagnosis on every rank), so the ranks can stop cleanly with one
/// message from rank 0 instead of aborting each other.
public struct CollectiveError: Error, CustomStringConvertible {
    public let error: RuleLensError
    public init(_ error: RuleLensError) { self.error = error }
    public var description: String { error.description }
}

/// One thing every rank must hold identically before work starts: a label for the error message and a value
/// (the text itself when short — options as sorted JSON, so a difference can be named — or a fingerprint).
public struct AgreementItem: Sendable {
    public let what: String
    public let value: String
    public init(_ what: String, _ value: String) { self.what = what; self.value = value }
}

extension Communicator {
    /// Compares `items` across ranks (one allgather). On any difference every rank throws the same
    /// `CollectiveError`, naming the ranks and, for JSON objects, the keys that differ. No-op with one rank.
    public func agree(_ items: [AgreementItem]) throws {
        guard size > 1 else { return }
        let mine = items.map { "\($0.what)\u{1}\($0.value)" }.joined(separator: "\u{2}")
        let all = allgather(mine).map { text in
            text.split(separator: "\u{2}", omittingEmptySubsequences: false).map { part -> (String, String) in
                let pair = part.split(separator: "\u{1}", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(pair[0]), pair.count > 1 ? String(pair[1]) : "")
            }
        }
        var problems: [String] = []
        let reference = all[0]
        for r in 1..<size where all[r].map(\.0) != reference.map(\.0) {
            problems.append("rank \(r) checks different things than rank 0 (a different rulelens binary)")
        }
        if problems.isEmpty {
            for (i, (what, value0)) in reference.enumerated() {
                let differing = (1..<size).filter { all[$0][i].1 != value0 }
                guard !differing.isEmpty else { continue }
                let ranks = differing.count == 1 ? "rank \(differing[0])" : "ranks " + differing.map(String.init).joined(separator: ", ")
                var detail = ""
                if let keys = Self.jsonDifferences(value0, all[differing[0]][i].1, otherRank: differing[0]) { detail = " (\(keys))" }
                problems.append("\(ranks) \(differing.count == 1 ? "differs" : "differ") from rank 0 in the \(what)\(detail)")
            }
        }
        guard !problems.isEmpty else { return }
        throw CollectiveError(RuleLensError(
            "the \(size) MPI ranks disagree before starting: \(problems.joined(separator: "; "))",
            fix: "launch every rank with the same command line, the same data files (byte for byte) and the same rulelens build; on a cluster, put them on a shared filesystem or copy them identically to every node"))
    }

    /// "steps: rank 0 has 10, rank 1 has 5" for two JSON objects that differ in some keys (nil if not JSON objects).
    static func jsonDifferences(_ a: String, _ b: String, otherRank: Int) -> String? {
        guard let x = try? JSONSerialization.jsonObject(with: Data(a.utf8)) as? [String: Any],
              let y = try? JSONSerialization.jsonObject(with: Data(b.utf8)) as? [String: Any] else { return nil }
        var out: [String] = []
        for key in Set(x.keys).union(y.keys).sorted() {
            let vx = x[key].map { "\($0)" } ?? "none", vy = y[key].map { "\($0)" } ?? "none"
            if vx != vy { out.append("\(key): rank 0 has \(vx), rank \(otherRank) has \(vy)") }
        }
        return out.isEmpty ? nil : out.joined(separator: "; ")
    }

    /// FNV-1a (64-bit) over the running executable's bytes (/proc/self/exe), so ranks can check they run the same
    /// build; the version string where the executable cannot be read.
    public static func binaryFingerprint() -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/self/exe") else { return "version " + RuleLensVersion.string }
        return fnv1a(data)
    }

    /// FNV-1a (64-bit) of bytes, 8 at a time (a fingerprint, not a cryptographic hash).
    public static func fnv1a(_ data: Data) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        data.withUnsafeBytes { raw in
            let words = raw.count / 8
            for i in 0..<words { hash = (hash ^ raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* 0x100_0000_01B3 }
            for i in (8 * words)..<raw.count { hash = (hash ^ UInt64(raw[i])) &* 0x100_0000_01B3 }
        }
        return String(hash, radix: 16)
    }

    /// FNV-1a (64-bit) of a float buffer's bits (to check that every rank holds the same weights).
    public static func fingerprint(_ values: UnsafePointer<Float>, count: Int) -> String {
        fnv1a(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: values), count: count * 4, deallocator: .none))
    }

    /// Throws a `CollectiveError` on every rank unless every rank holds the same bits in `values` (one allgather of
    /// a fingerprint). `what` names the buffer in the error.
    public func checkIdentical(_ values: UnsafePointer<Float>, count: Int, what: String) throws {
        guard size > 1 else { return }
        let prints = allgather(Self.fingerprint(values, count: count))
        let differing = (1..<size).filter { prints[$0] != prints[0] }
        guard !differing.isEmpty else { return }
        throw CollectiveError(RuleLensError(
            "the \(what) differ between ranks (rank \(differing.map(String.init).joined(separator: ", ")) against rank 0): the ranks no longer compute the same run",
            fix: "report this as a RuleLens bug with the command line; meanwhile train with one rank"))
    }
}
