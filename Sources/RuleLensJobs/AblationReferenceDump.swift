import Foundation
import RuleLensInterventions
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// `ablate --mean-from FILE.h5`: the mean / resample values read from an activation dump (`rulelens dump
/// --positions all`) instead of a reference pass over examples.
enum AblationReferenceDump {
    /// Whether `path` is an HDF5 file (by its signature, whatever its name).
    static func isHDF5(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        return (try? handle.read(upToCount: 8)).map { Array($0) == signature } ?? false
    }

    /// The dump's activations at every site `cells` ablate, checked against `model`: a dump of the same checkpoint
    /// (weights fingerprint), every position kept, each site present with this model's per-position shape.
    /// Each example contributes its input positions (its dumped length − 1: the eos is not an input when ablating).
    static func load(_ path: String, model: any LanguageModel, checkpoint: String, cells: [AblationCell]) throws -> ReferenceActivations {
        let reader = try ActivationStoreReader(path: path)
        let sites = cells.map(\.site).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let dumpCommand = "rulelens dump --checkpoint \(checkpoint) --data REFERENCE.jsonl --hooks \(sites.joined(separator: ",")) --positions all --out \(path) --force"
        guard reader.positions == "all" else {
            throw RuleLensError("--mean-from \(path) was dumped with --positions \(reader.positions), but mean and resample ablation need the value at every position",
                                fix: "dump the reference data with --positions all: \(dumpCommand)")
        }
        let fingerprint = Jobs.checkpointFingerprint(model)
        if let theirs = reader.attribute("checkpoint_fingerprint"), theirs != fingerprint {
            let source = reader.attribute("source_checkpoint") ?? "another checkpoint"
            throw RuleLensError("--mean-from \(path) holds activations of another model (dumped from \(source), weights fingerprint \(theirs); \(checkpoint) has \(fingerprint))",
                                fix: "dump the reference data with this checkpoint: \(dumpCommand)")
        }
        let missing = sites.filter { !reader.hooks.contains($0) }
        guard missing.isEmpty else {
            throw RuleLensError("--mean-from \(path) has no \(missing.joined(separator: ", ")) (it holds \(reader.hooks.prefix(6).joined(separator: ", "))\(reader.hooks.count > 6 ? ", …" : ""))",
                                fix: "dump those sites too: \(dumpCommand)")
        }
        guard reader.metaColumns.contains("length") else {
            throw RuleLensError("--mean-from \(path) has no /meta/length column", fix: "re-dump it with this RuleLens: \(dumpCommand)")
        }
        var seqLen = 0
        for site in sites {
            let info = try reader.site(site)
            let perPosition = Array(model.hookShape(site, batch: 1, seqLen: 1).dropFirst(2))
            guard info.shape.count == 2 + perPosition.count, Array(info.shape.dropFirst(2)) == perPosition, info.shape[0] == reader.count else {
                throw RuleLensError("/acts/\(site) in --mean-from \(path) has shape \(info.shape), but this model's \(site) is [example, pos] + \(perPosition)",
                                    fix: "dump the reference data with this checkpoint: \(dumpCommand)")
            }
            if seqLen == 0 { seqLen = info.shape[1] }
            guard info.shape[1] == seqLen else {
                throw RuleLensError("the sites of --mean-from \(path) have different position counts (\(seqLen) and \(info.shape[1]))", fix: dumpCommand)
            }
        }
        let lengths = try reader.intColumn("length").map { max(0, min($0, seqLen) - 1) }
        return ReferenceActivations(count: reader.count, seqLen: seqLen, lengths: lengths, origin: path) { site in
            let (_, values) = try reader.read(site: site)
            return Array(UnsafeBufferPointer(start: values.ptr, count: values.count))
        }
    }
}
