import Foundation
import RuleLensNumerics

extension Communicator {
    /// Runs `body` on every rank, then compares outcomes (one allgather): if it threw on any rank, every rank throws
    /// the same `CollectiveError` — the lowest failing rank's error, naming that rank — so all ranks stop together with
    /// one message instead of some waiting forever in the next collective. With one rank, just runs `body`.
    public func together<T>(_ body: () throws -> T) throws -> T {
        guard size > 1 else { return try body() }
        var outcome: Result<T, Error>
        do { outcome = .success(try body()) } catch { outcome = .failure(error) }
        var mine = ""
        if case .failure(let error) = outcome {
            switch error {
            case let e as CollectiveError: mine = Self.encode(e.error)
            case let e as RuleLensError: mine = Self.encode(e)
            default: mine = Self.encode(RuleLensError("\(error)", fix: "see the message above"))
            }
        }
        let all = allgather(mine)
        if let r = all.firstIndex(where: { !$0.isEmpty }) {
            let e = Self.decode(all[r])
            let failing = all.indices.filter { !all[$0].isEmpty }
            // Name the rank unless every rank failed the same way (then it is nobody's in particular).
            let same = failing.count == size && Set(all).count == 1
            throw CollectiveError(same ? e : RuleLensError("rank \(r) of \(size): " + e.problem, fix: e.fix))
        }
        return try outcome.get()
    }

    /// Runs `body` on rank 0 first, then (if it succeeded there) on the other ranks: for work that creates shared
    /// files the other ranks then only check (e.g. generated data in the run folder). Errors as in `together`.
    public func rootFirst<T>(_ body: () throws -> T) throws -> T {
        guard size > 1 else { return try body() }
        let first: T? = try together { isRoot ? try body() : nil }
        // Every rank takes part in both rounds (collectives must match); rank 0 just returns its result.
        return try together { if let first { return first }; return try body() }
    }

    static func encode(_ e: RuleLensError) -> String { e.problem + "\u{1}" + e.fix }
    static func decode(_ s: String) -> RuleLensError {
        let parts = s.split(separator: "\u{1}", maxSplits: 1, omittingEmptySubsequences: false)
        return RuleLensError(String(parts[0]), fix: parts.count > 1 ? String(parts[1]) : "")
    }
}
