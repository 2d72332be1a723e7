import Foundation
import RuleLensJobs
import RuleLensModel
import RuleLensNumerics
import RuleLensStore

/// Make-like caching: a step is skipped when its stamp (written after it succeeded) records the same fingerprint —
/// its kind and options after substitution, the content of every file and folder it reads, and the RuleLens version —
/// and every output the stamp lists is still there.
public enum StepCache {
    public static let stampFile = ".rulelens-step.json"
    /// The fingerprint of the attempt in progress (a killed `train` with the same fingerprint continues).
    public static let attemptFile = ".rulelens-attempt"

    /// What a finished step leaves in its folder.
    public struct Stamp: Codable, Sendable {
        public var fingerprint: String
        public var kind: String
        public var id: String
        public var command: String
        public var seconds: Double
        public var finished: String
        public var results: String   // JSON text of the results
        public var figures: [StepFigure]
        public var files: [String]
        public var version: String
    }

    /// The step's cache key.
    public static func fingerprint(kind: String, options: StepOptions, inputs: [String], limits: SpecLimits = .standard) throws -> String {
        var f = Fingerprint()
        f.add("rulelens \(RuleLensVersion.string)\nstep \(kind)\n")
        f.add(RunValue.object(options.values.mapValues(\.runValue)).jsonText(pretty: false))
        for path in inputs.sorted() {
            f.add("\ninput \(path) ")
            f.add(try contentFingerprint(path, limits: limits))
        }
        return f.hex
    }

    nonisolated(unsafe) static var memo: [String: (size: Int, mtime: Double, hex: String)] = [:]
    static let memoLock = NSLock()

    /// FNV-1a over a file's bytes, or over a folder's file names and contents (hidden files, such as stamps and
    /// temporary files, excluded). A missing path is an error: the step that makes it has not run. The path is
    /// stat-ed first: only regular files are read (up to their size), a folder's listing is bounded before any file
    /// is read, and a device, FIFO or socket is refused — a spec naming /dev/zero or / must not read forever.
    public static func contentFingerprint(_ path: String, limits: SpecLimits = .standard) throws -> String {
        let tooBig = "name a smaller input (a step's inputs are fingerprinted whole)"
        switch SpecFileKind(path) {
        case .missing:
            throw RuleLensError("input \(path) does not exist", fix: "run the step that writes it first (drop --only), or fix the path")
        case .special(let kind):
            throw RuleLensError("input \(path) is \(kind), not a file or folder", fix: "name a regular file or a folder (a step's inputs are read to fingerprint them)")
        case .regular(let size, let mtime):
            guard size <= limits.inputBytes else { throw limits.exceeded("input-bytes", "input \(path) has \(size) bytes", lessFix: tooBig) }
            return try fileFingerprint(path, size: size, mtime: mtime)
        case .folder:
            var f = Fingerprint()
            for file in try SpecFiles.listing(path, limits: limits) {
                f.add(file.path + "=" + (try fileFingerprint((path as NSString).appendingPathComponent(file.path), size: file.size, mtime: file.mtime)) + "\n")
            }
            return f.hex
        }
    }

    static func fileFingerprint(_ path: String, size: Int, mtime: Double) throws -> String {
        memoLock.lock()
        if let m = memo[path], m.size == size, m.mtime == mtime { memoLock.unlock(); return m.hex }
        memoLock.unlock()
        var f = Fingerprint()
        try SpecFiles.read(path, size: size) { f.add($0) }
        let hex = f.hex
        memoLock.lock(); memo[path] = (size, mtime, hex); memoLock.unlock()
        return hex
    }

    /// The stamp in `dir` if it matches `fingerprint` and its outputs exist.
    public static func validStamp(in dir: String, fingerprint: String) -> Stamp? {
        guard let stamp = readStamp(in: dir), stamp.fingerprint == fingerprint else { return nil }
        let fm = FileManager.default
        for file in stamp.files + stamp.figures.map(\.file) where !fm.fileExists(atPath: (dir as NSString).appendingPathComponent(file)) {
            return nil
        }
        return stamp
    }

    public static func readStamp(in dir: String) -> Stamp? {
        guard let data = FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent(stampFile)) else { return nil }
        return try? JSONDecoder().decode(Stamp.self, from: data)
    }

    public static func writeStamp(_ stamp: Stamp, in dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(stamp), to: (dir as NSString).appendingPathComponent(stampFile))
    }

    public static func removeStamp(in dir: String) {
        unlink((dir as NSString).appendingPathComponent(stampFile))
    }
}
