import Foundation
import RuleLensNumerics
import RuleLensReport
import RuleLensTasks

/// Where a model fails over the operand plane (PAPERS.md study 1): accuracy per (a, b), and mean accuracy
/// inside each held-out square, in its central part (Chebyshev distance ≤ L/2 from the centre) and on its
/// rim (the rest of the square), plus accuracy per ring (distance 0…L).
public struct PlaneAccuracyReport: Codable, Sendable {
    public struct SquareSummary: Codable, Sendable {
        public var square: Square
        public var inside: Double?
        public var central: Double?
        public var rim: Double?
        /// Accuracy at Chebyshev distance d from the centre, d = 0…L (nil where nothing was evaluated).
        public var rings: [Double?]
        public var evaluated: Int
    }

    public var plane: OperandPlane
    /// accuracy[a − aMin][b − bMin]; NaN where no example was evaluated.
    public var accuracy: [[Double]]
    /// Examples evaluated per cell.
    public var counts: [[Int]]
    public var squares: [SquareSummary]
    /// Over all held-out squares together.
    public var inside: Double?
    public var central: Double?
    public var rim: Double?
    /// Over every evaluated example outside the squares.
    public var outside: Double?
    public var overall: Double?
}

public enum PlaneAccuracy {
    /// Builds the report from per-example results. Examples without operands, or outside the plane, are skipped.
    public static func compute(results: [(a: Int, b: Int, correct: Bool)], plane: OperandPlane,
                               squares: [Square]) -> PlaneAccuracyReport {
        let nA = plane.aMax - plane.aMin + 1, nB = plane.bMax - plane.bMin + 1
        var right = [[Int]](repeating: [Int](repeating: 0, count: nB), count: nA)
        var counts = right
        for r in results where r.a >= plane.aMin && r.a <= plane.aMax && r.b >= plane.bMin && r.b <= plane.bMax {
            counts[r.a - plane.aMin][r.b - plane.bMin] += 1
            if r.correct { right[r.a - plane.aMin][r.b - plane.bMin] += 1 }
        }
        let accuracy = (0..<nA).map { i in (0..<nB).map { j in counts[i][j] > 0 ? Double(right[i][j]) / Double(counts[i][j]) : .nan } }

        func mean(_ include: (Int, Int) -> Bool) -> Double? {
            var n = 0, k = 0
            for r in results where include(r.a, r.b) { n += 1; if r.correct { k += 1 } }
            return n > 0 ? Double(k) / Double(n) : nil
        }
        let summaries = squares.map { sq in
            PlaneAccuracyReport.SquareSummary(
                square: sq, inside: mean { sq.contains(a: $0, b: $1) }, central: mean { sq.isCentral(a: $0, b: $1) },
                rim: mean { sq.isRim(a: $0, b: $1) },
                rings: (0...max(sq.half, 0)).map { d in mean { sq.contains(a: $0, b: $1) && sq.ring(a: $0, b: $1) == d } },
                evaluated: results.filter { sq.contains(a: $0.a, b: $0.b) }.count)
        }
        return PlaneAccuracyReport(
            plane: plane, accuracy: accuracy, counts: counts, squares: summaries,
            inside: squares.isEmpty ? nil : mean { a, b in squares.contains { $0.contains(a: a, b: b) } },
            central: squares.isEmpty ? nil : mean { a, b in squares.contains { $0.isCentral(a: a, b: b) } },
            rim: squares.isEmpty ? nil : mean { a, b in squares.contains { $0.isRim(a: a, b: b) } },
            outside: mean { a, b in !squares.contains { $0.contains(a: a, b: b) } },
            overall: mean { _, _ in true })
    }

    /// Convenience: results from examples and a correctness flag per example.
    public static func compute(examples: [Example], correct: [Bool], plane: OperandPlane, squares: [Square]) -> PlaneAccuracyReport {
        var results: [(a: Int, b: Int, correct: Bool)] = []
        for (e, c) in zip(examples, correct) { if let a = e.a, let b = e.b { results.append((a, b, c)) } }
        return compute(results: results, plane: plane, squares: squares)
    }

    /// The SVG heatmap: b upward, a to the right, held-out squares outlined.
    public static func heatmap(_ report: PlaneAccuracyReport, title: String) -> String {
        heatmapModel(report, title: title).render()
    }

    /// The heatmap before rendering (callers add overlays such as carry boundaries).
    public static func heatmapModel(_ report: PlaneAccuracyReport, title: String) -> Heatmap {
        let p = report.plane
        let nA = p.aMax - p.aMin + 1, nB = p.bMax - p.bMin + 1
        let values = (0..<nB).map { j in (0..<nA).map { i in report.accuracy[i][j] } }
        var map = Heatmap(values: values, rowLabels: (p.bMin...p.bMax).map(String.init),
                          colLabels: (p.aMin...p.aMax).map(String.init))
        map.title = title
        map.xLabel = p.aName; map.yLabel = p.bName
        map.range = 0...1
        map.colorBarLabel = "accuracy"
        map.rowsUpward = true
        map.maxTicks = 10
        map.outlines = report.squares.map { s in
            let sq = s.square
            return Heatmap.Outline(rows: (sq.centerB - sq.half - p.bMin)...(sq.centerB + sq.half - p.bMin),
                                   cols: (sq.centerA - sq.half - p.aMin)...(sq.centerA + sq.half - p.aMin),
                                   label: s.inside.map { String(format: "%.2f", $0) })
        }
        return map
    }

    /// Writes PREFIX.npy (float64 [nA, nB], NaN where not evaluated), PREFIX.svg and PREFIX.json (the summary);
    /// returns the paths. Each file is written atomically.
    @discardableResult
    /// The files `write` makes for `prefix`.
    public static func outputs(prefix: String) -> [String] { ["npy", "svg", "json"].map { prefix + "." + $0 } }

    /// Refuses (naming the file and `--force`) when any of `write`'s files for `prefix` exists.
    public static func refuseExistingOutputs(prefix: String) throws {
        for path in outputs(prefix: prefix) where FileManager.default.fileExists(atPath: path) {
            throw RuleLensError("\(path) already exists", fix: "pass --force to replace it, or choose another --out prefix")
        }
    }

    public static func write(_ report: PlaneAccuracyReport, prefix: String, title: String) throws -> [String] {
        let nA = report.accuracy.count, nB = report.accuracy.first?.count ?? 0
        var flat: [Double] = []
        flat.reserveCapacity(nA * nB)
        for row in report.accuracy { flat += row }
        var summary = report
        summary.accuracy = []; summary.counts = []   // the arrays live in the .npy
        let files: [(String, Data)] = [
            (prefix + ".npy", NPY.float64(flat, shape: [nA, nB])),
            (prefix + ".svg", Data(heatmap(report, title: title).utf8)),
            (prefix + ".json", try JSONText.encode(summary, pretty: true)),
        ]
        let parent = (prefix as NSString).deletingLastPathComponent
        if !parent.isEmpty { try OutputCommit.createFolder(parent) }
        for (path, data) in files { try AtomicFile.write(data, to: path) }
        return files.map(\.0)
    }

    /// The lines eval prints.
    public static func summaryLines(_ report: PlaneAccuracyReport) -> [String] {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
        var lines: [String] = []
        if report.squares.isEmpty {
            lines.append("plane accuracy: overall \(f(report.overall)) (no held-out squares)")
        } else {
            lines.append("held-out squares: inside \(f(report.inside)) · centre \(f(report.central)) · rim \(f(report.rim)) · outside \(f(report.outside))")
            for s in report.squares {
                lines.append("  square (\(s.square.centerA),\(s.square.centerB)) L=\(s.square.half): inside \(f(s.inside)) "
                             + "centre \(f(s.central)) rim \(f(s.rim)) · by ring 0…\(s.square.half): "
                             + s.rings.map { f($0) }.joined(separator: " "))
            }
        }
        return lines
    }
}

/// Minimal NumPy .npy writer (format 1.0, little-endian, C order).
public enum NPY {
    public static func float64(_ values: [Double], shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        d.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer { buf in
            for v in buf { var le = v.bitPattern.littleEndian; withUnsafeBytes(of: &le) { d.append(contentsOf: $0) } }
        }
        return d
    }
}

extension PlaneAccuracy {
    /// Reads per-example results from a predictions JSONL file: each line has either a boolean `correct`, or a
    /// `prediction` string compared with `answer` through `Answer.extract`; operands come from integer `a` and
    /// `b` on the line, or else from `examples` by position (as `rulelens eval --out` writes them: one line per
    /// example, in order, with its `prompt`, which must match).
    public static func readResults(path: String, examples: [Example]? = nil) throws -> [(a: Int, b: Int, correct: Bool)] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RuleLensError("cannot read predictions file \(path)", fix: "check the path")
        }
        var out: [(a: Int, b: Int, correct: Bool)] = []
        let fix = "each line needs \"correct\" (true/false) or \"prediction\" and \"answer\", and integer \"a\" and \"b\" "
            + "unless the lines follow the data part in order (the output of `rulelens eval --out`)"
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        for (n, line) in lines.enumerated() {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw RuleLensError("line \(n + 1) of \(path) is not a JSON object", fix: fix)
            }
            var a = (obj["a"] as? NSNumber)?.intValue, b = (obj["b"] as? NSNumber)?.intValue
            var answer = obj["answer"] as? String
            if a == nil || b == nil, let examples {
                guard lines.count == examples.count, let e = examples[safe: n], e.prompt == (obj["prompt"] as? String ?? e.prompt) else {
                    throw RuleLensError("line \(n + 1) of \(path) has no \"a\" and \"b\", and the file does not follow the "
                                        + "\(examples.count) examples of the data part line by line",
                                        fix: "pass the --part that was evaluated (train, test or all), or add \"a\" and \"b\" to each line")
                }
                a = e.a; b = e.b
                if answer == nil { answer = e.answer ?? Answer.extract(e.target) }
            }
            guard let a, let b else { throw RuleLensError("line \(n + 1) of \(path) has no integer \"a\" and \"b\"", fix: fix) }
            if let p = obj["prediction"] as? String, let answer {
                out.append((a, b, Answer.extract(p) == Answer.extract(answer)))
            } else if let c = obj["correct"] as? Bool {
                out.append((a, b, c))
            } else {
                throw RuleLensError("line \(n + 1) of \(path) has neither \"correct\" nor \"prediction\" with \"answer\"", fix: fix)
            }
        }
        guard !out.isEmpty else { throw RuleLensError("predictions file \(path) is empty", fix: "give one line per evaluated example") }
        return out
    }
}

private extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

extension PlaneAccuracy {
    /// Per-example answer correctness: the final answer of the prediction (`Answer.extract`) equals the example's
    /// answer. For direct formats this is exact match; for scratchpad and rule formats only the last line counts.
    public static func answerCorrect(predictions: [String], examples: [Example]) -> [Bool] {
        zip(predictions, examples).map { p, e in Answer.extract(p) == (e.answer ?? Answer.extract(e.target)) }
    }

    /// The plane report's file prefix beside an eval predictions file: `runs/x/pred.jsonl` → `runs/x/pred.plane`.
    public static func prefix(besides predictionsPath: String) -> String {
        let ns = predictionsPath as NSString
        return (ns.pathExtension.isEmpty ? predictionsPath : ns.deletingPathExtension) + ".plane"
    }
}
