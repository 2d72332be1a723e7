import Foundation
import RuleLensNumerics

/// Joins complete activation-file shards (`rulelens dump` under mpirun: one file per rank, each a contiguous run of
/// the examples) into one activation file whose /meta and /acts datasets are HDF5 virtual datasets over the shards.
/// h5py, h5dump, `ActivationStoreReader` and every probe then read one file with all N examples.
///
/// The joined file stores the shards' names relative to its own folder (the shards must sit beside it), so the
/// folder can be moved or copied as a whole. It is written to a temporary name and renamed into place, and only
/// after every shard says `complete` = 1: it exists with `complete` = 1 or not at all.
public enum ActivationStoreJoin {
    /// Root attributes that describe one shard, not the joined file.
    public static let shardKeys: Set<String> = ["shard_index", "shard_count", "shard_first_example"]

    /// Writes `path` over `shards` (in example order); returns the total number of examples.
    @discardableResult
    public static func write(path: String, shards: [String]) throws -> Int {
        guard !shards.isEmpty else { throw RuleLensError("no shards to join into \(path)", fix: "report this as a RuleLens bug") }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
        for shard in shards where URL(fileURLWithPath: shard).deletingLastPathComponent().standardizedFileURL.path != folder {
            throw RuleLensError("shard \(shard) is not in the folder of \(path)", fix: "keep the shards beside the joined file")
        }
        // Every shard: a complete RuleLens activation file of the same dump.
        var files: [HDF5File] = []
        defer { for f in files { f.close() } }
        var rows: [Int] = []
        for (i, shard) in shards.enumerated() {
            let file = try HDF5File.open(shard)
            files.append(file)
            guard (try? file.stringAttribute("format")) == ActivationStoreFormat.name else {
                throw RuleLensError("\(shard) is not a RuleLens activation file", fix: "rerun the dump with --force")
            }
            let n = try file.intAttribute("n_examples"), written = try file.intAttribute("examples_written")
            guard try file.intAttribute("complete") == 1, written == n else {
                throw RuleLensError("shard \(shard) is incomplete (\(written) of \(n) examples): \(path) is only written when every shard is complete",
                                    fix: "rerun the same mpirun command with --resume to finish the shards")
            }
            if let index = try? file.stringAttribute("shard_index"), index != String(i) {
                throw RuleLensError("\(shard) holds shard \(index), expected shard \(i)", fix: "rerun the dump with --force")
            }
            if i > 0 {
                for key in ActivationStoreFormat.identityKeys where key != "n_examples" && !shardKeys.contains(key) {
                    let a = (try? files[0].stringAttribute(key)) ?? (try? files[0].intAttribute(key)).map(String.init)
                    let b = (try? file.stringAttribute(key)) ?? (try? file.intAttribute(key)).map(String.init)
                    guard a == b else {
                        throw RuleLensError("shards \(shards[0]) and \(shard) differ in \(key): they are not parts of one dump",
                                            fix: "rerun the dump with --force")
                    }
                }
            }
            rows.append(n)
        }
        let total = rows.reduce(0, +)
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let temp = dir + "/.\(URL(fileURLWithPath: path).lastPathComponent).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temp)
        do {
            let out = try HDF5File.create(temp, overwrite: true)
            defer { out.close() }
            try out.copyAttributes(from: files[0], skipping: shardKeys.union(["complete", "examples_written", "n_examples"]))
            try out.setAttribute("n_examples", total)
            try out.setAttribute("examples_written", total)
            let names = shards.map { URL(fileURLWithPath: $0).lastPathComponent }
            let json = try JSONSerialization.data(withJSONObject: names, options: [.withoutEscapingSlashes])
            try out.setAttribute("shards", String(decoding: json, as: UTF8.self))
            try out.setAttribute("completed_utc", ISO8601DateFormatter().string(from: Date()))
            // The joined file's own dimension scales, named as the shards' (references cannot point into another file).
            let dimensions = HDF5Dimensions(file: out)
            for group in [ActivationStoreFormat.metaGroup, ActivationStoreFormat.actsGroup] {
                try out.createGroup(group)
                let datasets = try files[0].openGroup(group).childNames()
                for (i, f) in files.enumerated().dropFirst() where try f.openGroup(group).childNames() != datasets {
                    throw RuleLensError("shard \(shards[i]) has other /\(group) datasets than \(shards[0])", fix: "rerun the dump with --force")
                }
                for name in datasets {
                    let full = "\(group)/\(name)"
                    let first = try files[0].openDataset(full)
                    let rowShape = Array(try first.shape().dropFirst())
                    var sources: [HDF5VirtualSource] = []
                    for (i, f) in files.enumerated() {
                        let shape = try f.openDataset(full).shape()
                        guard shape == [rows[i]] + rowShape else {
                            throw RuleLensError("\(shards[i]):/\(full) has shape \(shape), expected \([rows[i]] + rowShape)",
                                                fix: "rerun the dump with --force")
                        }
                        sources.append(HDF5VirtualSource(file: names[i], dataset: "/" + full, rows: rows[i]))
                    }
                    let vds = try out.createVirtualDataset(full, like: first, rowShape: rowShape, sources: sources)
                    try vds.copyAttributes(from: first, skipping: HDF5Dataset.dimensionScaleAttributes.union([HDF5Dataset.stringChecksumAttribute]))
                    if first.type == .string {
                        // The joined column's checksum, from each shard's strings (read checked against the shard's own).
                        var fingerprint = Fingerprint()
                        for f in files { HDF5Dataset.stringChecksum(try f.openDataset(full).readStrings(), into: &fingerprint) }
                        try vds.setAttribute(HDF5Dataset.stringChecksumAttribute, "\(total):\(fingerprint.hex)")
                    }
                    let names = try first.dimensionScaleNames().compactMap { $0 }
                    if names.count == rowShape.count + 1 {       // shards written before dimension scales have none
                        try dimensions.attach(vds, dims: names, shape: [total] + rowShape)
                    }
                    vds.close()
                    first.close()
                }
            }
            try dimensions.setExamples(total)
            // Last, as in a one-process dump: the file only says complete once everything else is in it.
            try out.setAttribute("complete", 1)
            try out.flush()
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temp)
            throw RuleLensError("cannot move the joined file into place at \(path) (\(reason))", fix: "check the permissions of \(dir)")
        }
        return total
    }
}
