import Foundation
import RuleLensDistributed
import RuleLensModel
import RuleLensNumerics

/// The options of a run the generic training driver (`TrainLoop`) runs: what it reads of them (schedule, clipping,
/// AdamW, seed, threads, saves) and how a resume may change them. `TrainOptions` (`rulelens train`) and
/// `VAETrainOptions` (`rulelens vae train`) conform.
public protocol TrainLoopOptions: Codable, TrainingSettings {
    var data: String { get set }
    var cosineSteps: Int? { get set }
    var minLRFraction: Float { get }
    var threads: Int? { get set }
    var saveEvery: Int { get set }
    /// Checks the numbers make sense before anything is written.
    func validate() throws
    /// A default instance (the saved train_config.json is decoded over it, so a field an older file lacks keeps its default).
    static var defaults: Self { get }
    /// Option keys (Codable names) a resume may change besides `data`, `saveEvery`, `steps`, `cosineSteps`.
    static var mayDifferOnResume: Set<String> { get }
    /// The command that writes such runs (for messages), e.g. "rulelens train".
    static var command: String { get }
    /// Whether a saved train_config.json object is of this kind of run (a `vae train` folder is not a `train` one).
    static func isOwnConfig(_ object: [String: Any]) -> Bool
}

extension TrainLoopOptions {
    /// The number of steps the cosine decay spans.
    public var scheduleSteps: Int { cosineSteps ?? steps }

    /// The schedule and optimizer rules `train` and `vae train` share, so both refuse the same values the same way.
    public func validateSchedule() throws {
        for (name, v) in [("steps", steps), ("batch", batch)] where v <= 0 {
            throw RuleLensError("--\(name) is \(v), but it must be positive", fix: "pass a positive --\(name)")
        }
        if let c = cosineSteps, c <= 0 { throw RuleLensError("--cosine-steps is \(c), but it must be positive", fix: "pass a positive --cosine-steps, or leave it out (it defaults to --steps)") }
        if warmup < 0 { throw RuleLensError("--warmup is \(warmup), but it cannot be negative", fix: "pass --warmup 0 or more") }
        if !(lr > 0) || !lr.isFinite { throw RuleLensError("--lr is \(lr), but it must be a positive number", fix: "pass e.g. --lr 1e-3") }
        if !(weightDecay >= 0) || !weightDecay.isFinite { throw RuleLensError("--weight-decay is \(weightDecay), but it cannot be negative", fix: "pass e.g. --weight-decay 0.01") }
        // AdamW multiplies each weight matrix by (1 − lr·wd) every step: at lr·wd ≥ 1 that wipes or flips the weights
        // whatever the gradients say, so the run can only diverge.
        if Double(lr) * Double(weightDecay) >= 1 {
            throw RuleLensError("--weight-decay \(weightDecay) with --lr \(lr) multiplies the weights by 1 − lr·wd = \(String(format: "%.3g", 1 - Double(lr) * Double(weightDecay))) every step, which wipes them out",
                                fix: "pass a --weight-decay below \(String(format: "%.3g", 1 / Double(lr))) (lr·wd < 1; e.g. --weight-decay 0.01)")
        }
        if !gradClip.isFinite || gradClip < 0 {
            throw RuleLensError("--grad-clip is \(gradClip), but it must be a finite number, 0 (off) or positive", fix: "pass e.g. --grad-clip 1, or --grad-clip 0 to turn clipping off")
        }
        if !minLRFraction.isFinite || minLRFraction < 0 {
            throw RuleLensError("the final learning-rate fraction is \(minLRFraction), but it must be a finite number ≥ 0", fix: "use the default 0.1")
        }
        for (name, value) in [("save-every", saveEvery), ("threads", threads ?? 0)] where value < 0 {
            throw RuleLensError("--\(name) is \(value), but it must be 0 or positive",
                                fix: "pass --\(name) 0 (\(name == "threads" ? "all cores" : "never periodically")) or a positive number")
        }
    }

    /// Decodes a saved train_config.json; fields an older file lacks take their defaults, extra fields (the BLAS
    /// provenance) are ignored.
    public static func decodeSaved(_ data: Data) throws -> Self {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.defaults)) as? [String: Any] ?? [:]
        guard let saved = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RuleLensError("not a JSON object", fix: "")
        }
        guard isOwnConfig(saved) else {
            throw RuleLensError("it is not the configuration of a `\(command)` run", fix: "")
        }
        for (key, value) in saved { object[key] = value }
        return try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: object))
    }
}

/// One parameter store with its gradients (the model's own memory: the driver updates it in place).
public struct ParameterStore {
    public var params: FloatBuffer, grads: FloatBuffer, tensors: [ParameterTensor]
    public init(params: FloatBuffer, grads: FloatBuffer, tensors: [ParameterTensor]) {
        self.params = params; self.grads = grads; self.tensors = tensors
    }
}

/// A log file of a run: CSV, first column the step. `keptEmpty`: written with its header from the start (otherwise it
/// appears with its first row, as eval_log.csv).
public struct TrainLogFile {
    public let name: String, header: String, keptEmpty: Bool
    public init(name: String, header: String, keptEmpty: Bool = true) { self.name = name; self.header = header; self.keptEmpty = keptEmpty }
}

/// What a model trained by `TrainLoop` provides: the step's forward pass and loss, backward, its parameter stores, its
/// log rows and progress text, and its checkpoint. The driver does the rest — learning-rate schedule, gradient clipping,
/// AdamW (one per store), the kill-proof saves (`TrainSaves`), the writer lock, resume, provenance and progress.
public protocol Trainable: AnyObject {
    /// The parameter stores, each with its own AdamW.
    var parameterStores: [ParameterStore] { get }
    /// Names of the stores in train_state.safetensors (`adam.NAME.m`, `adam_t.NAME`); nil for one store (`adam.m`, `adam_t`).
    var storeNames: [String]? { get }
    /// `format` of train_state.safetensors.
    var stateFormat: String { get }
    /// The run's logs (train_log.csv first).
    var logFiles: [TrainLogFile] { get }
    func zeroGrads()
    /// The forward pass and loss of the batch of 0-based `step`: the loss and the tokens it covered.
    func forwardLoss(step: Int) throws -> (loss: Float, tokens: Int)
    func backward()
    /// After backward, before clipping (data parallelism: the global batch's gradient); returns the global loss.
    func reduceGradients(loss: Float) -> Float
    /// The log rows of the step just taken, one per entry of `logFiles` (nil: no row in that log).
    func logRows(step: Int, loss: Float, lr: Float, gradNorm: Float, tokensPerSecond: Double) -> [String?]
    /// The progress text of the step just taken, before the throughput (ends with " | ").
    func progressText(step: Int, steps: Int, loss: Float, lr: Float) -> String
    /// After the step's update and its log rows (e.g. evaluation every N steps).
    func afterStep(_ step: Int) throws
    /// Before a save (data parallelism: that every rank holds the same weights).
    func beforeSave() throws
    /// Writes the checkpoint (model files) into the new folder `dir`.
    func writeCheckpoint(to dir: String, step: Int, extra: [String: String]) throws
}

extension Trainable {
    public var storeNames: [String]? { nil }
    public func reduceGradients(loss: Float) -> Float { loss }
    public func afterStep(_ step: Int) throws {}
    public func beforeSave() throws {}
}

/// The generic training driver of `rulelens train` and `rulelens vae train`: one output folder, its lock, its saves
/// (`TrainSaves`: each save one unit of checkpoint, optimizer state and manifest, kill-proof), resume with nothing but
/// the folder (every option kept, the steps extendable), BLAS provenance, logs cut back to the save, and the loop
/// (schedule, clipping, AdamW, progress). The job builds the model between `open` and `begin`.
public final class TrainLoop<Options: TrainLoopOptions> {
    public static var stateFile: String { "train_state.safetensors" }
    public static var configFile: String { "train_config.json" }

    public let outDir: String
    public let resume: Bool
    /// Check the save's SHA-256 manifest before resuming from it.
    public var verify = Checkpoint.verifiesByDefault
    public var progress = ProgressLine()
    /// Whether this process writes (false on the ranks other than 0 under mpirun).
    public var writes = true
    /// Whether anything was written into `outDir` yet.
    public private(set) var wroteAnything = false
    var lock: OutputLock? = nil
    /// Whether a save of this run is on disk (resumed from one, or written by this process).
    var holdsSave = false
    /// The highest folder `begin` created for the run (removed again if the run fails before its first save).
    var createdFolder: String? = nil
    var saves: TrainSaves { TrainSaves(outDir: outDir) }
    func path(_ name: String) -> String { outDir + "/" + name }

    public init(outDir: String, resume: Bool) { self.outDir = outDir; self.resume = resume }

    // MARK: - Opening the folder

    /// The newest save of a resumed run (its folder and manifest).
    public struct Resumed {
        public let dir: String
        let manifest: TrainSaves.Manifest<Options>
        public var step: Int { manifest.step }
    }

    /// On resume: takes the lock, reads the saved options, finds the newest complete save and verifies it; returns the
    /// options in force (the saved ones with what may change) and the save (nil when killed before the first save: the
    /// run starts again from step 0 with its saved options). Fresh: checks `outDir` holds no run.
    public func open(_ requested: Options) throws -> (options: Options, resumed: Resumed?) {
        // The lock comes first: while another process writes the folder, nothing here may read or judge it.
        if writes, Self.isFolder(outDir) { lock = try OutputLock(folder: outDir, command: Options.command) }
        guard resume, !Self.holdsOnlyLeftovers(outDir) else {
            if resume { progress.message(Self.leftoversNote(outDir)) }
            try Self.checkFreshContent(options: requested, outDir: outDir)
            return (requested, nil)
        }
        let saved = try Self.readSavedOptions(in: outDir)
        if let newest = try saves.newest(Options.self) {
            let options = try resolveResume(requested: requested, saved: saved, savedStep: newest.manifest.step)
            try options.validate()
            if verify { try saves.verify(newest.dir, newest.manifest) }
            return (options, Resumed(dir: newest.dir, manifest: newest.manifest))
        }
        let options = try resolveResume(requested: requested, saved: saved, savedStep: 0)
        try options.validate()
        progress.message("note: \(outDir) has no complete save yet; starting the run again from step 0 with its saved options")
        return (options, nil)
    }

    /// The checks a fresh run makes before writing anything: the options, and that `outDir` holds no run.
    public static func checkFresh(options: Options, outDir: String) throws {
        try checkNotBusy(outDir)
        try checkFreshContent(options: options, outDir: outDir)
    }

    /// `checkFresh` without the lock check (for the holder of the lock).
    static func checkFreshContent(options: Options, outDir: String) throws {
        try options.validate()
        let fm = FileManager.default
        func path(_ name: String) -> String { outDir + "/" + name }
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: outDir, isDirectory: &isDir) else { return }
        guard isDir.boolValue else {
            throw RuleLensError("--out \(outDir) is a file, not a folder", fix: "choose a folder name for --out")
        }
        if Checkpoint.exists(at: outDir) || fm.fileExists(atPath: path(TrainSaves.folder)) || fm.fileExists(atPath: path(stateFile)) {
            throw RuleLensError("\(outDir) already holds a training run (checkpoint and saves)",
                                fix: "pass --resume to continue it, or choose another --out folder")
        }
        if fm.fileExists(atPath: path(TrainJob.logFile)) || fm.fileExists(atPath: path(configFile)) {
            throw RuleLensError("\(outDir) holds an earlier run that stopped before its first checkpoint",
                                fix: "pass --resume to start it again with its saved options, choose another --out folder, or delete \(outDir) first")
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// Refuses, naming the process, when another writer holds the folder's lock (checked before anything is judged
    /// from the folder's content, which that writer may be changing). Under mpirun only rank 0 writes and locks, so
    /// only it checks: another rank's probe of the lock would race rank 0 taking it.
    static func checkNotBusy(_ outDir: String) throws {
        guard Communicator.world.isRoot else { return }
        try OutputLock.checkFree(folder: outDir, command: Options.command)
    }

    /// Whether `outDir` is a folder holding nothing of a run but leftovers of one killed before it wrote its options
    /// (temporary files, an empty saves folder): `--resume` then starts the run afresh with the options given.
    public static func holdsOnlyLeftovers(_ outDir: String) -> Bool {
        guard isFolder(outDir), let names = try? FileManager.default.contentsOfDirectory(atPath: outDir) else { return false }
        return names.contains(where: TrainSaves.isTemporary) && names.allSatisfy { name in
            TrainSaves.isTemporary(name)
                || (name == TrainSaves.folder && ((try? FileManager.default.contentsOfDirectory(atPath: outDir + "/" + name)) ?? ["?"])
                    .allSatisfy(TrainSaves.isTemporary))
        }
    }

    static func leftoversNote(_ outDir: String) -> String {
        "note: \(outDir) holds only leftovers of a run killed before it saved its options; starting it afresh with the options given"
    }

    static func notResumable(_ outDir: String) -> RuleLensError {
        if FileManager.default.fileExists(atPath: outDir + "/" + stateFile) && !FileManager.default.fileExists(atPath: outDir + "/" + TrainSaves.folder) {
            return RuleLensError("--resume: \(outDir) was saved by an older RuleLens (train_state.safetensors at the top, no \(TrainSaves.folder)/ folder), which this version cannot resume",
                                 fix: "start a new run in another --out folder; the checkpoint in \(outDir) still loads")
        }
        return RuleLensError("--resume: \(outDir) holds no resumable run (it has no \(configFile))",
                             fix: "resume the --out folder of a `\(Options.command)` run, or drop --resume to start afresh")
    }

    /// The options of the run saved in `outDir` (for `--resume`); throws if it holds no resumable run of this kind.
    public static func savedOptions(in outDir: String) throws -> Options {
        try checkNotBusy(outDir)
        return try readSavedOptions(in: outDir)
    }

    /// `savedOptions` without the lock check (for the holder of the lock).
    static func readSavedOptions(in outDir: String) throws -> Options {
        let file = outDir + "/" + configFile
        let fm = FileManager.default
        let oldLayout = fm.fileExists(atPath: outDir + "/" + stateFile) && !fm.fileExists(atPath: outDir + "/" + TrainSaves.folder)
        guard !oldLayout, let data = fm.contents(atPath: file) else { throw notResumable(outDir) }
        do { return try Options.decodeSaved(data) } catch {
            throw RuleLensError("\(file) cannot be read as the options of a `\(Options.command)` run (\(error))",
                                fix: "resume it with the command that started it, or start a new run in another folder")
        }
    }

    /// On resume: the saved options, with what may change. Paths may be re-pointed (the data's fingerprint is
    /// checked), `saveEvery` may change (it changes no result), and `steps` may move (the cosine schedule keeps its
    /// original length; steps past it run at the final learning rate). Anything else that differs is refused,
    /// naming each difference.
    func resolveResume(requested: Options, saved: Options, savedStep: Int) throws -> Options {
        var r = requested
        if r.threads == nil { r.threads = saved.threads }
        if r.steps != saved.steps {
            guard r.steps > savedStep else {
                throw RuleLensError("--resume --steps \(r.steps): the run in \(outDir) is already at step \(savedStep)",
                                    fix: "pass a --steps above \(savedStep) to train further, or evaluate the checkpoint in \(outDir) as it is")
            }
            if r.cosineSteps == nil { r.cosineSteps = saved.scheduleSteps }
        }
        if r.scheduleSteps != saved.scheduleSteps {
            throw RuleLensError("--resume: the cosine schedule of the run in \(outDir) spans \(saved.scheduleSteps) steps; --cosine-steps \(r.scheduleSteps) would change the learning rate of steps already taken",
                                fix: "leave --cosine-steps out on resume (steps past the schedule run at its final learning rate), or start a new run in another --out folder")
        }
        let a = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as? [String: Any] ?? [:]
        let b = try JSONSerialization.jsonObject(with: JSONEncoder().encode(saved)) as? [String: Any] ?? [:]
        let mayDiffer: Set<String> = Options.mayDifferOnResume.union(["data", "saveEvery", "steps", "cosineSteps"])
        var differences: [String] = []
        for key in Set(a.keys).union(b.keys).subtracting(mayDiffer).sorted() {
            let x = a[key].map { "\($0)" } ?? "none", y = b[key].map { "\($0)" } ?? "none"
            if x != y { differences.append("\(key): saved \(y), now \(x)") }
        }
        if !differences.isEmpty {
            throw RuleLensError("--resume: the options differ from the run saved in \(outDir) (\(differences.joined(separator: "; ")))",
                                fix: "resume with just --out \(outDir) --resume (the saved options, see \(path(Self.configFile)), are the defaults), or start a new run in another --out folder")
        }
        return r
    }

    /// Fixes the thread count (the weights depend on it) and records it; returns the options with it.
    public static func configureThreads(_ options: inout Options) {
        if let threads = options.threads { Parallel.configure(threads: threads) }
        options.threads = Parallel.threads
    }

    // MARK: - Optimizer state

    /// One AdamW per store, restored from the save's train_state.safetensors; returns them and the step.
    func loadState(_ resumed: Resumed, model: any Trainable, weightDecay: Float) throws -> [AdamW] {
        let statePath = resumed.dir + "/" + Self.stateFile
        let state = try Safetensors.read(path: statePath)
        let stores = model.parameterStores
        guard let stepText = state.metadata["step"], let step = Int(stepText) else {
            throw RuleLensError("\(statePath) is not a RuleLens training state for this model",
                                fix: "it is written by `\(Options.command)`; start a new run in another --out folder")
        }
        guard step == resumed.manifest.step else {
            throw RuleLensError("\(statePath) is from step \(step) but its save from step \(resumed.manifest.step)",
                                fix: "restore the save from a copy, or start a new run in another --out folder")
        }
        var adams: [AdamW] = []
        for (i, store) in stores.enumerated() {
            let prefix = model.storeNames.map { "adam.\($0[i])." } ?? "adam."
            let tKey = model.storeNames.map { "adam_t.\($0[i])" } ?? "adam_t"
            let n = store.params.count
            guard let m = state.info(prefix + "m"), let v = state.info(prefix + "v"), m.count == n, v.count == n,
                  let t = Int(state.metadata[tKey] ?? "") else {
                throw RuleLensError("\(statePath) is not a RuleLens training state for this model",
                                    fix: "it is written by `\(Options.command)`; start a new run in another --out folder")
            }
            var adam = AdamW(weightDecay: weightDecay)
            adam.m = FloatBuffer(count: n)
            adam.v = FloatBuffer(count: n)
            state.copyFloats(m, into: adam.m.ptr)
            state.copyFloats(v, into: adam.v.ptr)
            adam.t = t
            adams.append(adam)
        }
        return adams
    }

    func stateData(_ model: any Trainable, adams: [AdamW], step: Int, seed: UInt64, fingerprint: String) -> Data {
        var meta = ["format": model.stateFormat, "step": "\(step)", "seed": "\(seed)", "data_fingerprint": fingerprint]
        var entries: [Safetensors.Entry] = []
        for (i, store) in model.parameterStores.enumerated() {
            let prefix = model.storeNames.map { "adam.\($0[i])." } ?? "adam."
            meta[model.storeNames.map { "adam_t.\($0[i])" } ?? "adam_t"] = "\(adams[i].t)"
            let n = store.params.count
            entries.append(Safetensors.Entry(name: prefix + "m", shape: [n], floats: adams[i].m.ptr))
            entries.append(Safetensors.Entry(name: prefix + "v", shape: [n], floats: adams[i].v.ptr))
        }
        return Safetensors.encode(entries, metadata: meta)
    }

    // MARK: - Beginning to write

    /// After every check: the kernel periods of the run, the folder prepared (a resumed run's checkpoint republished
    /// from its save and its logs cut back to it; a fresh folder created and locked), train_config.json written.
    func begin(_ options: Options, resumed: Resumed?, logFiles: [TrainLogFile]) throws -> [TrainSaves.KernelPeriod] {
        let fm = FileManager.default
        var kernels: [TrainSaves.KernelPeriod]
        let blas = BLASProvenance.current
        if let resumed {
            let manifest = resumed.manifest
            kernels = manifest.kernels
            if writes {
                wroteAnything = true
                saves.removeStaleTemporaries()
                try saves.republish(from: resumed.dir)
                try saves.removeAllBut(step: manifest.step)
                try cutLogs(to: manifest, logFiles: logFiles)
            }
            if let last = kernels.last?.blas, last.core != blas.core || last.threads != blas.threads {
                if writes {
                    FileHandle.standardError.write(Data(("note: \(outDir) was trained so far with \(last.summary); it continues with \(blas.summary), "
                        + "so its weights will not be bitwise equal to an uninterrupted run (set OPENBLAS_CORETYPE=\(last.core) to keep the kernel)\n").utf8))
                }
                kernels.append(TrainSaves.KernelPeriod(fromStep: manifest.step, blas: blas))
            }
        } else {
            kernels = [TrainSaves.KernelPeriod(fromStep: 0, blas: blas)]
            if writes {
                if !fm.fileExists(atPath: outDir) {
                    var top = URL(fileURLWithPath: outDir).standardizedFileURL
                    while !fm.fileExists(atPath: top.deletingLastPathComponent().path) && top.path != "/" { top = top.deletingLastPathComponent() }
                    do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
                        throw FileSystemError.mapped(error, path: outDir, action: "create the output folder")
                            ?? RuleLensError("cannot create the output folder \(outDir) (\(error.localizedDescription))", fix: "check the path and its permissions")
                    }
                    createdFolder = top.path
                }
                if lock == nil { lock = try OutputLock(folder: outDir, command: Options.command) }
                wroteAnything = true
                saves.removeStaleTemporaries()
                for file in logFiles where !file.keptEmpty && fm.fileExists(atPath: path(file.name)) { try fm.removeItem(atPath: path(file.name)) }
            }
        }
        if writes { try writeConfig(options, kernels: kernels) }
        return kernels
    }

    /// Cuts the logs back to their lengths at the save (the steps after it are redone).
    func cutLogs(to manifest: TrainSaves.Manifest<Options>, logFiles: [TrainLogFile]) throws {
        for file in logFiles {
            let name = file.name, header = file.header
            let full = path(name)
            let length = manifest.logs[name] ?? 0
            let size = ((try? FileManager.default.attributesOfItem(atPath: full))?[.size] as? NSNumber)?.intValue
            if length == 0 {
                if size != nil { try? FileManager.default.removeItem(atPath: full) }
                if file.keptEmpty { try AtomicFile.write(Data((header + "\n").utf8), to: full) }
            } else if let size, size >= length {
                guard truncate(full, off_t(length)) == 0 else {
                    throw RuleLensError("cannot cut \(full) back to the save of step \(manifest.step) (\(String(cString: strerror(errno))))",
                                        fix: "check the permissions of \(outDir)")
                }
            } else {
                // Shorter than at the save (edited or lost): keep its rows up to the save's step.
                try TrainLog.rewind(full, header: header, throughStep: manifest.step)
                progress.message("note: \(full) was shorter than at the save of step \(manifest.step); kept its rows up to that step")
            }
        }
    }

    /// Writes train_config.json: the options plus the BLAS the run started with (and, after a resume under another
    /// kernel or thread count, every period).
    func writeConfig(_ options: Options, kernels: [TrainSaves.KernelPeriod]) throws {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as? [String: Any] ?? [:]
        object["blas"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(kernels[0].blas))
        if kernels.count > 1 { object["blas_history"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(kernels)) }
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) + Data([0x0A]),
                             to: path(Self.configFile))
    }

    // MARK: - The loop

    /// The optimizers of `model`, one AdamW per store: fresh, or restored from the resumed save.
    public func optimizers(_ model: any Trainable, resumed: Resumed?, weightDecay: Float) throws -> [AdamW] {
        try resumed.map { try loadState($0, model: model, weightDecay: weightDecay) }
            ?? model.parameterStores.map { _ in AdamW(weightDecay: weightDecay) }
    }

    /// Trains `model` from the resumed save (or step 0) to `options.steps`, saving every `options.saveEvery` steps and
    /// after the last. Every check must have passed: this writes into the folder first.
    /// A fresh run that fails before its first save leaves nothing behind (`discardUnsaved`); once a save is on
    /// disk, the run stays, resumable.
    public func train(_ model: any Trainable, adams: [AdamW], options: Options, resumed: Resumed?, fingerprint: String, evalFingerprint: String?,
                      checkpointExtra: [String: String]) throws -> TrainSummary {
        holdsSave = resumed != nil
        do {
            return try trainSaving(model, adams: adams, options: options, resumed: resumed, fingerprint: fingerprint,
                                   evalFingerprint: evalFingerprint, checkpointExtra: checkpointExtra)
        } catch {
            if !holdsSave { discardUnsaved(logFiles: model.logFiles) }
            throw error
        }
    }

    /// Removes what a fresh run wrote before its first save (options, logs, temporaries; the folder if it made it).
    func discardUnsaved(logFiles: [TrainLogFile]) {
        guard writes, wroteAnything else { return }
        let fm = FileManager.default
        if let createdFolder {
            try? fm.removeItem(atPath: createdFolder)
        } else {
            for name in [Self.configFile, TrainSaves.folder] + logFiles.map(\.name) { try? fm.removeItem(atPath: path(name)) }
            saves.removeStaleTemporaries()
        }
        wroteAnything = false
    }

    func trainSaving(_ model: any Trainable, adams: [AdamW], options: Options, resumed: Resumed?, fingerprint: String, evalFingerprint: String?,
                     checkpointExtra: [String: String]) throws -> TrainSummary {
        let logFiles = model.logFiles
        var adams = adams
        let startStep = resumed?.step ?? 0
        let kernels = try begin(options, resumed: resumed, logFiles: logFiles)
        let blas = BLASProvenance.current
        var logs: [TrainLogAppender?] = []
        for (i, file) in logFiles.enumerated() {
            logs.append(writes && (file.keptEmpty || i == 0) ? try TrainLogAppender(path: path(file.name), header: file.header, fresh: resumed == nil) : nil)
        }

        let schedule = CosineSchedule(maxLR: options.lr, minLR: options.lr * options.minLRFraction,
                                      warmupSteps: options.warmup, totalSteps: options.scheduleSteps)
        var lastSaved: Int? = resumed?.step
        var lastLoss: Float = .nan
        var tokensDone = 0
        let t0 = ProgressLine.now()
        var windowSeconds = 0.0, windowTokens = 0, stepSeconds = 0.0
        var tokensPerSecond = 0.0
        if startStep >= options.steps {
            progress.message("\(outDir) already finished all \(options.steps) steps; nothing to do")
        }
        for step in startStep..<max(startStep, options.steps) {
            let stepStart = ProgressLine.now()
            model.zeroGrads()
            var (loss, stepTokens) = try model.forwardLoss(step: step)
            guard loss.isFinite else { throw nonFinite("the loss is \(loss)", step: step + 1, lastSaved: lastSaved, options: options) }
            model.backward()
            loss = model.reduceGradients(loss: loss)
            let lr = schedule.lr(at: step)
            let stores = model.parameterStores
            var norm: Float = .nan
            if options.gradClip > 0 {
                norm = clipGradNorm(stores.map(\.grads), maxNorm: options.gradClip)
                guard norm.isFinite else { throw nonFinite("the gradient norm is \(norm)", step: step + 1, lastSaved: lastSaved, options: options) }
            }
            for (i, store) in stores.enumerated() { adams[i].step(params: store.params, grads: store.grads, tensors: store.tensors, lr: lr) }
            lastLoss = loss

            let now = ProgressLine.now()
            tokensDone += stepTokens
            stepSeconds += now - stepStart
            windowTokens += stepTokens
            windowSeconds += now - stepStart
            if windowSeconds >= 1 || tokensPerSecond == 0 || step + 1 == options.steps {
                // Throughput over the last second of training steps (evaluation and saving excluded).
                tokensPerSecond = Double(windowTokens) / max(windowSeconds, 1e-9)
                windowSeconds = 0; windowTokens = 0
            }
            let rows = model.logRows(step: step + 1, loss: loss, lr: lr, gradNorm: norm, tokensPerSecond: Double(stepTokens) / max(now - stepStart, 1e-9))
            for (i, row) in rows.enumerated() where i < logs.count { if let row { logs[i]?.append(row) } }
            // ETA from the mean wall time per step of this session (evaluation and saving included).
            let remaining = Double(options.steps - step - 1) * (now - t0) / Double(step + 1 - startStep)
            progress.update(model.progressText(step: step + 1, steps: options.steps, loss: loss, lr: lr)
                            + "\(ProgressLine.rate(tokensPerSecond)) tok/s | ETA \(ProgressLine.duration(remaining))",
                            final: step + 1 == options.steps)
            try model.afterStep(step + 1)
            if (options.saveEvery > 0 && (step + 1) % options.saveEvery == 0) || step + 1 == options.steps {
                try model.beforeSave()
                if writes {
                    try save(model, adams: adams, step: step + 1, options: options, fingerprint: fingerprint,
                             evalFingerprint: evalFingerprint, kernels: kernels, extra: checkpointExtra)
                    holdsSave = true
                }
                lastSaved = step + 1
            }
        }
        for log in logs { log?.close() }
        withExtendedLifetime(lock) {}
        let seconds = ProgressLine.now() - t0
        return TrainSummary(steps: options.steps, stepsRun: max(0, options.steps - startStep), finalLoss: lastLoss,
                            tokensPerSecond: Double(tokensDone) / max(stepSeconds, 1e-9), seconds: seconds, checkpoint: outDir, blas: blas)
    }

    func save(_ model: any Trainable, adams: [AdamW], step: Int, options: Options, fingerprint: String, evalFingerprint: String?,
              kernels: [TrainSaves.KernelPeriod], extra checkpointExtra: [String: String]) throws {
        let state = stateData(model, adams: adams, step: step, seed: options.seed, fingerprint: fingerprint)
        var extra: [String: String] = ["step": "\(step)", "steps": "\(options.steps)", "data": options.data, "seed": "\(options.seed)"]
        extra.merge(checkpointExtra) { $1 }
        if kernels.count > 1 {
            extra["blas_history"] = kernels.map { "\($0.blas.summary) from step \($0.fromStep + 1)" }.joined(separator: "; ")
        }
        var logs: [String: Int] = [:]
        for file in model.logFiles {
            logs[file.name] = ((try? FileManager.default.attributesOfItem(atPath: path(file.name)))?[.size] as? NSNumber)?.intValue ?? 0
        }
        let manifest = TrainSaves.Manifest(step: step, dataPosition: step, logs: logs, dataFingerprint: fingerprint,
                                           evalDataFingerprint: evalFingerprint, kernels: kernels, options: options, files: [:])
        try saves.write(step: step, state: state, manifest: manifest) { dir in
            try model.writeCheckpoint(to: dir, step: step, extra: extra)
        }
    }

    func nonFinite(_ what: String, step: Int, lastSaved: Int?, options: Options) -> RuleLensError {
        let kept = lastSaved.map { "the last good checkpoint (step \($0)) is kept in \(outDir)" }
            ?? "no checkpoint had been saved yet, so none was written"
        return RuleLensError("training stopped at step \(step): \(what); \(kept)",
                             fix: Self.divergenceAdvice(options) + "; then train again into a new --out folder")
    }

    /// What most likely made the numbers blow up, from the settings: decoupled weight decay multiplies every weight
    /// by (1 − lr·wd) each step, so a weight decay far above its usual range (0.01–0.1) flips or zeroes the weights
    /// whatever the data; otherwise the step size (a high --lr, no warmup, no clipping).
    static func divergenceAdvice(_ o: Options) -> String {
        let decay = Double(o.lr) * Double(o.weightDecay)
        if !o.weightDecay.isFinite || o.weightDecay > 1 {
            return "lower --weight-decay (now \(o.weightDecay)): each step multiplies the weights by 1 − lr × weight decay = "
                + String(format: "%.3g", 1 - decay) + ", which must stay close to 1 (typical --weight-decay 0.01–0.1)"
        }
        var steps: [String] = []
        if o.lr > 3e-3 { steps.append("lower --lr (now \(o.lr); 1e-3 or less is typical)") }
        if o.gradClip <= 0 { steps.append("turn --grad-clip back on (e.g. --grad-clip 1)") }
        if o.warmup == 0 { steps.append("add a --warmup (e.g. 100 steps)") }
        if steps.isEmpty { steps = ["lower --lr (now \(o.lr))", "lengthen --warmup (now \(o.warmup))"] }
        return steps.joined(separator: ", or ")
    }
}

/// A training log opened for appending: a fresh run starts it with its header; a resumed one appends (its log was
/// cut back to the save first).
final class TrainLogAppender {
    let handle: FileHandle
    init(path: String, header: String, fresh: Bool) throws {
        if fresh || !FileManager.default.fileExists(atPath: path) {
            try AtomicFile.write(Data((header + "\n").utf8), to: path)
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw RuleLensError("cannot open \(path) for writing", fix: "check the permissions of its folder")
        }
        h.seekToEndOfFile()
        handle = h
    }
    func append(_ line: String) { handle.write(Data((line + "\n").utf8)) }
    func close() { handle.closeFile() }
}
