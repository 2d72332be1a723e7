import Foundation
import RuleLensModel
import RuleLensNumerics
import RuleLensTasks

/// The size check every generation of a sampled task passes before it generates: the examples are held in memory and
/// written whole, so `--count 1000000000000` would grow until the process is killed. A small sample of the same task
/// gives the bytes and the time per example; the whole set is refused when it cannot fit in memory or on the disk, or
/// would take more than `maxSeconds`, with the estimate and the fix.
extension TaskSpec {
    /// Sets above this many examples are estimated from a sample before they are generated.
    static let checkedAbove = 20_000
    /// The longest generation accepted without asking for a smaller --count.
    static let maxSeconds = 3600.0
    /// Generated examples in memory (Swift strings, source maps, the encoded files) take about this many times
    /// their JSONL size (measured: 7.4 for syllogisms, 6.2 for math derivations).
    static let memoryPerFileByte = 8

    /// The number of examples the options ask for (nil for the fixed planes of the operand tasks).
    var requestedExamples: Int? {
        guard !task.hasPlane || split == .length else { return nil }
        let test = split == .length ? testPerDigit.multipliedSaturating(testDigits.count) : 0
        return resolvedCount.addingSaturating(test)
    }

    /// Generates the data set after the size check; `outDir` (when the set is written) is checked for free space,
    /// and `log` hears the estimate of a large set before it starts.
    public func generateChecked(outDir: String? = nil, log: ((String) -> Void)? = nil) throws -> GeneratedData {
        try validate()
        guard let total = requestedExamples, total > Self.checkedAbove else { return try generate() }
        var sample = self
        sample.count = 1000
        if split == .length { sample.testPerDigit = min(testPerDigit, 100) }
        let started = ProgressLine.now()
        let drawn = try sample.generate()
        let seconds = max(ProgressLine.now() - started, 1e-3)
        let n = max(drawn.train.count + drawn.test.count, 1)
        let bytesPerExample = max(1, (try JSONL.encode(drawn.train + drawn.test)).count / n)
        let fileBytes = total.multipliedSaturating(bytesPerExample)
        let estimatedSeconds = seconds * Double(total) / Double(n)
        let what = "generating \(total) \(task.rawValue) examples (about \(MemoryEstimate.format(fileBytes)) of JSONL)"
        let smaller = max(2, Int(Double(n) * Self.maxSeconds / seconds / 10) * 10)
        try MemoryEstimate(parts: [("the examples in memory (about \(Self.memoryPerFileByte) × their JSONL size)",
                                    fileBytes.multipliedSaturating(Self.memoryPerFileByte))])
            .require(what, fix: "pass a smaller --count")
        if estimatedSeconds > Self.maxSeconds {
            throw RuleLensError("\(what) would take about \(ProgressLine.duration(estimatedSeconds)) (\(n) took \(String(format: "%.2f", seconds)) s)",
                                fix: "pass a smaller --count (about \(smaller) take an hour), or generate several sets with different --seed")
        }
        if let outDir, let free = Self.freeBytes(near: outDir), fileBytes > free {
            throw RuleLensError("\(what) needs more than the \(MemoryEstimate.format(free)) free on the disk of \(outDir)",
                                fix: "pass a smaller --count, or an --out folder on a disk with more room")
        }
        log?("\(what), about \(ProgressLine.duration(estimatedSeconds))")
        return try generate()
    }

    /// Free bytes on the file system of `path` or of its nearest existing parent.
    static func freeBytes(near path: String) -> Int? {
        var url = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" { url.deleteLastPathComponent() }
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: url.path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.intValue
    }
}
