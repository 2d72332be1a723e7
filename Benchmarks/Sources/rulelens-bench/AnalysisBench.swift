import Foundation
import RuleLensJobs
import RuleLensAnalysis
import RuleLensNumerics

/// `rulelens-bench pca|silhouette FILE ROWS COLS [LABELS_FILE]`: times RuleLens on the raw little-endian float32
/// matrix (and int32 labels) that bench_analysis.py wrote, so both sides see the same data.
enum AnalysisBench {
    static func readMatrix(_ args: [String]) throws -> FloatMatrix {
        guard args.count >= 3, let rows = Int(args[1]), let cols = Int(args[2]) else {
            throw RuleLensError("usage: rulelens-bench pca|silhouette FILE ROWS COLS [LABELS]", fix: "see Benchmarks/bench_analysis.py")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: args[0]))
        guard data.count == rows * cols * 4 else {
            throw RuleLensError("\(args[0]) holds \(data.count) bytes, not \(rows)×\(cols) float32", fix: "rewrite the benchmark data")
        }
        let m = FloatMatrix(rows: rows, cols: cols)
        _ = data.withUnsafeBytes { memcpy(m.ptr, $0.baseAddress!, data.count) }
        return m
    }

    static func pca(_ args: [String]) throws {
        let x = try readMatrix(args)
        let components = args.count > 3 ? Int(args[3]) ?? 10 : 10
        var ratio: [Double] = []
        let seconds = try bestTime(repeats: 3) { ratio = try PCA.fit(x, components: components).explainedVarianceRatio }
        emit(["bench": "pca", "rows": x.rows, "cols": x.cols, "components": components, "seconds": seconds,
              "explained_variance_ratio": ratio, "threads": Parallel.threads])
    }

    static func silhouette(_ args: [String]) throws {
        let x = try readMatrix(args)
        guard args.count > 3 else { throw RuleLensError("silhouette needs a labels file", fix: "pass LABELS (int32)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: args[3]))
        let ids = data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)).map(Int.init) }
        let labels = Labels(ids)
        var score = 0.0
        let seconds = try bestTime(repeats: 3) { score = try Analysis.silhouette(x, labels) }
        emit(["bench": "silhouette", "rows": x.rows, "cols": x.cols, "seconds": seconds, "score": score, "threads": Parallel.threads])
    }

    /// `rulelens-bench probe FILE ROWS COLS LABELS FOLDS C [TOL]`: the linear probe with contiguous folds (scikit-learn's
    /// KFold), no control task; reports each fold's correct count, iterations and final gradient.
    static func probe(_ args: [String]) throws {
        let x = try readMatrix(args)
        guard args.count > 5, let folds = Int(args[4]), let C = Double(args[5]) else {
            throw RuleLensError("usage: rulelens-bench probe FILE ROWS COLS LABELS FOLDS C [TOL]", fix: "see Benchmarks/bench_analysis.py")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: args[3]))
        let labels = Labels(data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)).map(Int.init) })
        var result: LinearProbeResult? = nil
        let seconds = try bestTime(repeats: 3) {
            result = try Analysis.linearProbe(x, labels, C: C, folds: .contiguous(folds))
        }
        let r = result!
        emit(["bench": "probe", "rows": x.rows, "cols": x.cols, "classes": labels.classCount, "folds": folds, "C": C,
              "seconds": seconds, "fold_correct": r.foldCorrect, "fold_iterations": r.foldIterations,
              "gradient_norm": r.gradientNorm, "converged": r.converged, "accuracy": r.accuracy, "threads": Parallel.threads])
    }
}
