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
    public static func fingerprint(kind: String, options: StepOptions, inputs: [String]) throws -> String {
        var f = Fingerprint()
        f.add("rulelens \(RuleLensVersion.string)\nstep \(kind)\n")
        f.add(RunValue.object(options.values.mapValues(\.runValue)).jsonText(pretty: false))
        for path in inputs.sorted() {
            f.add("\ninput \(path) ")
            f.add(try contentFingerprint(path))
        }
        return f.hex
    }

    nonisolated(unsafe) static var memo: [String: (size: Int, mtime: Double, hex: String)] = [:]
    static let memoLock = NSLock()

    /// FNV-1a over a file's bytes, or over a folder's file names and contents (hidden files, such as stamps and
    /// temporary files, excluded). A missing path is an error: the step that makes it has not run.
    public static func contentFingerprint(_ path: String) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw RuleLensError("input \(path) does not exist", fix: "run the step that writes it first (drop --only), or fix the path")
        }
        if !isDir.boolValue { return try fileFingerprint(path) }
        var f = Fingerprint()
        let files = (fm.enumerator(atPath: path)?.compactMap { $0 as? String } ?? [])
            .filter { rel in !rel.split(separator: "/").contains { $0.hasPrefix(".") } }
            .sorted()
        for rel in files {
            let full = (path as NSString).appendingPathComponent(rel)
            var d: ObjCBool = false
            guard fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue else { continue }
            f.add(rel + "=" + (try fileFingerprint(full)) + "\n")
        }
        return f.hex
    }

    static func fileFingerprint(_ path: String) throws -> String {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs?[.size] as? NSNumber)?.intValue ?? -1
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        memoLock.lock()
        if let m = memo[path], m.size == size, m.mtime == mtime { memoLock.unlock(); return m.hex }
        memoLock.unlock()
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw RuleLensError("cannot read input \(path)", fix: "check its permissions")
        }
        defer { try? handle.close() }
        var f = Fingerprint()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { f.add($0) }
        }
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
