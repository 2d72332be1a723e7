import Foundation
import RuleLensModel
import RuleLensNumerics

/// The saves of a training run, each one unit that a kill at any instant leaves whole or absent.
///
/// A save of step N is the folder `OUT/checkpoints/step-0000000N/` holding everything resuming needs:
/// the checkpoint (config.json, vocab.json, model.safetensors, rulelens.json), `train_state.safetensors`
/// (AdamW moments and step) and, written last, `manifest.json`: the step, the data position, the byte lengths of
/// `train_log.csv` / `eval_log.csv` at that step, the data fingerprints, the BLAS kernels used so far, and the
/// SHA-256 and size of every file of the save. The folder is built under a temporary name (`.step-….tmp-…`),
/// synced, and renamed into place: that rename is the commit. Then the checkpoint files are copied to the top of
/// OUT (so `transformers` loads OUT as it is; each copy atomic, rulelens.json last), and older saves and stale
/// temporaries are removed. Resuming takes the newest complete save, verifies it, republishes the top-level copy
/// from it and cuts the logs back to its offsets.
struct TrainSaves {
    static let folder = "checkpoints"
    static let manifestFile = "manifest.json"
    static let manifestFormat = "rulelens-train-save"

    /// One kernel period of a run: the BLAS in force from `fromStep` (0-based first step trained with it).
    struct KernelPeriod: Codable, Equatable {
        var fromStep: Int
        var blas: BLASProvenance
        enum CodingKeys: String, CodingKey { case fromStep = "from_step", blas }
    }

    /// What a save's manifest.json holds.
    struct Manifest<Options: Codable>: Codable {
        var format = TrainSaves.manifestFormat
        var rulelensVersion = RuleLensVersion.string
        /// Optimizer steps taken.
        var step: Int
        /// Batches taken from the data order (a function of seed and step only, so equal to `step`).
        var dataPosition: Int
        /// Byte length of each log (train_log.csv, eval_log.csv) when the save was made; resume cuts them back to it.
        var logs: [String: Int]
        var dataFingerprint: String
        var evalDataFingerprint: String?
        /// The BLAS kernels and thread counts the run has used, in order (more than one after a resume under another kernel).
        var kernels: [KernelPeriod]
        /// The options in force (train_config.json holds the same; kept here so a save is self-describing).
        var options: Options
        /// SHA-256 and size of every other file of the save.
        var files: [String: FileDigest]

        enum CodingKeys: String, CodingKey {
            case format, rulelensVersion = "rulelens_version", step, dataPosition = "data_position", logs
            case dataFingerprint = "data_fingerprint", evalDataFingerprint = "eval_data_fingerprint", kernels, options, files
        }
    }

    struct FileDigest: Codable, Equatable {
        var sha256: String
        var bytes: Int
    }

    let outDir: String
    var checkpointsDir: String { outDir + "/" + Self.folder }

    static func unitName(step: Int) -> String { String(format: "step-%08d", step) }

    /// Step of a complete-looking save folder name (`step-00000250` → 250).
    static func step(ofUnit name: String) -> Int? {
        guard name.hasPrefix("step-"), name.count > 5 else { return nil }
        let digits = name.dropFirst(5)
        guard digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// Whether `name` is a leftover of an interrupted write (ours: `.NAME.tmp-…`, `.trash-…`).
    static func isTemporary(_ name: String) -> Bool {
        AtomicFile.isTemporary(name) || name.hasPrefix(".trash-")
    }

    // MARK: - Writing

    /// Writes the save of `step` as one unit, publishes its checkpoint at the top of OUT, removes older saves.
    /// `writeCheckpoint(dir)` writes the checkpoint into the new folder `dir` (`ModelFolder.save`); `state` is
    /// train_state.safetensors.
    func write<Options>(step: Int, state: Data, manifest: Manifest<Options>, writeCheckpoint: (String) throws -> Void) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: checkpointsDir) {
            do { try fm.createDirectory(atPath: checkpointsDir, withIntermediateDirectories: false) } catch {
                throw RuleLensError("cannot create \(checkpointsDir) (\(error.localizedDescription))", fix: "check the permissions of \(outDir)")
            }
            try AtomicFile.syncDirectory(outDir)
        }
        let name = Self.unitName(step: step)
        let temp = checkpointsDir + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        let final = checkpointsDir + "/" + name
        do {
            try writeCheckpoint(temp)
            try AtomicFile.write(state, to: temp + "/" + TrainJob.stateFile)
            var manifest = manifest
            for file in try fm.contentsOfDirectory(atPath: temp).sorted() where !file.hasPrefix(".") {
                guard let digest = SHA256.hex(fileAt: temp + "/" + file),
                      let size = (try fm.attributesOfItem(atPath: temp + "/" + file)[.size] as? NSNumber)?.intValue else {
                    throw RuleLensError("cannot read back \(temp)/\(file)", fix: "check the disk and the permissions of \(checkpointsDir)")
                }
                manifest.files[file] = FileDigest(sha256: digest, bytes: size)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(manifest) + Data([0x0A]), to: temp + "/" + Self.manifestFile)
            try AtomicFile.syncDirectory(temp)
            if fm.fileExists(atPath: final) { try discard(final) }
            guard rename(temp, final) == 0 else {
                throw RuleLensError("cannot move the save of step \(step) into \(final) (\(String(cString: strerror(errno))))",
                                    fix: "check the permissions of \(checkpointsDir)")
            }
        } catch {
            try? fm.removeItem(atPath: temp)
            throw error
        }
        try AtomicFile.syncDirectory(checkpointsDir)
        // Committed. Publish the checkpoint at the top of OUT; a kill from here on is repaired by resume.
        try republish(from: final)
        try removeAllBut(step: step)
    }

    /// Copies the checkpoint files to the top of OUT, each atomically, in order (rulelens.json, the manifest of the
    /// others, last). Not fsynced: the save itself is durable, and resume republishes from it.
    func publish(_ files: [(name: String, data: Data)]) throws {
        for file in files { try AtomicFile.write(file.data, to: outDir + "/" + file.name, sync: false) }
    }

    /// Republishes the checkpoint of the save in `unit` (after a kill between commit and publication): every file of
    /// the save except its training state and manifest, rulelens.json last.
    func republish(from unit: String) throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: unit)) ?? [])
            .filter { $0 != TrainJob.stateFile && $0 != Self.manifestFile && $0 != Checkpoint.infoFile && !$0.hasPrefix(".") }.sorted()
        var files: [(name: String, data: Data)] = []
        let last = FileManager.default.fileExists(atPath: unit + "/" + Checkpoint.infoFile) ? [Checkpoint.infoFile] : []
        for name in names + last {
            guard let data = FileManager.default.contents(atPath: unit + "/" + name) else {
                throw RuleLensError("cannot read \(unit)/\(name)", fix: "check the permissions of \(unit)")
            }
            files.append((name, data))
        }
        try publish(files)
    }

    /// Renames a folder out of the way (atomically), then deletes it, so a half-deleted folder never looks like a save.
    func discard(_ path: String) throws {
        let url = URL(fileURLWithPath: path)
        let trash = url.deletingLastPathComponent().path + "/.trash-\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        guard rename(path, trash) == 0 else {
            throw RuleLensError("cannot remove the old save \(path) (\(String(cString: strerror(errno))))", fix: "check the permissions of \(checkpointsDir)")
        }
        try? FileManager.default.removeItem(atPath: trash)
    }

    /// Removes every save other than `step`'s, and temporaries.
    func removeAllBut(step: Int) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDir)) ?? [] {
            if let s = Self.step(ofUnit: name), s != step { try discard(checkpointsDir + "/" + name) }
        }
    }

    /// Removes leftovers of interrupted writes in OUT and OUT/checkpoints (temporary files and folders, half-deleted
    /// saves). Only called while holding the run's lock, so no other writer's temporaries are touched.
    func removeStaleTemporaries() {
        let fm = FileManager.default
        for dir in [outDir, checkpointsDir] {
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where Self.isTemporary(name) {
                try? fm.removeItem(atPath: dir + "/" + name)
            }
        }
    }

    // MARK: - Reading

    /// The newest complete save (a `step-N` folder with a readable manifest), or nil when there is none.
    func newest<Options>(_ type: Options.Type) throws -> (dir: String, manifest: Manifest<Options>)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDir)) ?? []
        let units = names.compactMap { name in Self.step(ofUnit: name).map { (step: $0, name: name) } }.sorted { $0.step > $1.step }
        for unit in units {
            let dir = checkpointsDir + "/" + unit.name
            let path = dir + "/" + Self.manifestFile
            guard let data = FileManager.default.contents(atPath: path) else { continue }   // not a save of ours
            let manifest: Manifest<Options>
            do { manifest = try JSONDecoder().decode(Manifest<Options>.self, from: data) } catch {
                throw RuleLensError("\(path) cannot be read (\(error)): the newest save of the run is damaged",
                                    fix: "restore it from a copy, or delete \(dir) and start a new run in another --out folder")
            }
            guard manifest.format == Self.manifestFormat, manifest.step == unit.step else {
                throw RuleLensError("\(path) is not the manifest of a RuleLens training save of step \(unit.step)",
                                    fix: "restore it from a copy, or start a new run in another --out folder")
            }
            return (dir, manifest)
        }
        return nil
    }

    /// Checks every file of the save against its SHA-256 in the manifest; the error names the file.
    func verify<Options>(_ unit: String, _ manifest: Manifest<Options>) throws {
        for name in manifest.files.keys.sorted() {
            let path = unit + "/" + name
            guard let actual = SHA256.hex(fileAt: path) else {
                throw RuleLensError("\(path) is missing from the save of step \(manifest.step) (its manifest lists it)",
                                    fix: "restore the file from a copy; if you removed it on purpose, pass --no-verify")
            }
            if actual != manifest.files[name]!.sha256 {
                throw RuleLensError("\(path) does not match the SHA-256 in \(Self.manifestFile) of the save of step \(manifest.step): the file is damaged or was edited",
                                    fix: "restore it from a copy; if you edited it on purpose, pass --no-verify")
            }
        }
    }
}
