import XCTest
import RuleLensNumerics
@testable import RuleLensAnalysis

final class SeparabilityTests: XCTestCase {
    /// Direct O(n²) silhouette in Double, written from the definition.
    func naiveSilhouette(_ x: FloatMatrix, _ labels: Labels) -> Double {
        let n = x.rows, sizes = labels.classSizes
        var total = 0.0
        for i in 0..<n {
            var sums = [Double](repeating: 0, count: labels.classCount)
            for j in 0..<n where j != i { sums[labels.ids[j]] += euclid(x, i, j) }
            let own = labels.ids[i]
            if sizes[own] == 1 { continue }
            let a = sums[own] / Double(sizes[own] - 1)
            let b = (0..<labels.classCount).filter { $0 != own }.map { sums[$0] / Double(sizes[$0]) }.min()!
            total += (b - a) / max(a, b)
        }
        return total / Double(n)
    }

    func testSilhouetteMatchesDefinition() throws {
        let (x, labels) = blobs(k: 4, perClass: 60, d: 10, spread: 1.5, seed: 1)
        // offset the data so the BLAS distance path has to cope with large norms
        for i in 0..<x.count { x.ptr[i] += 50 }
        let fast = try Analysis.silhouette(x, labels)
        XCTAssertEqual(fast, naiveSilhouette(x, labels), accuracy: 1e-4 * abs(fast))
        // sampled: the same as the exact score of the sampled rows, reproducible per seed
        let s1 = try Analysis.silhouette(x, labels, sampleSize: 100, seed: 3)
        XCTAssertEqual(s1, try Analysis.silhouette(x, labels, sampleSize: 100, seed: 3))
        XCTAssertNotEqual(s1, fast)
    }

    func testKNNMatchesBruteForce() throws {
        let (x, labels) = blobs(k: 3, perClass: 40, d: 5, spread: 0.8, seed: 2)
        var correct = 0
        for i in 0..<x.rows {
            let near = (0..<x.rows).filter { $0 != i }.sorted { euclid(x, i, $0) < euclid(x, i, $1) }.prefix(5)
            var votes = [Int](repeating: 0, count: 3)
            for j in near { votes[labels.ids[j]] += 1 }
            let winner = votes.firstIndex(of: votes.max()!)!
            if winner == labels.ids[i] { correct += 1 }
        }
        XCTAssertEqual(try Analysis.knnAccuracy(x, labels, k: 5), Double(correct) / Double(x.rows), accuracy: 1.5 / Double(x.rows))
    }

    func testNMIKnownValues() {
        XCTAssertEqual(Analysis.normalizedMutualInformation([0, 0, 1, 1], [5, 5, 7, 7]), 1, accuracy: 1e-12)
        XCTAssertEqual(Analysis.normalizedMutualInformation([0, 0, 1, 1], [0, 1, 0, 1]), 0, accuracy: 1e-12)
        XCTAssertEqual(Analysis.normalizedMutualInformation([0, 0, 0], [1, 1, 1]), 1)
        // [0,0,1,1] vs [0,0,0,1], from the definition: MI = Σ p(u,v) ln(p(u,v) / (p(u) p(v))) over H-mean
        let pTrue = [0.5, 0.5], pPred = [0.75, 0.25]
        let h = { (p: [Double]) in -p.reduce(0) { $0 + $1 * log($1) } }
        let expected = (0.5 * log(0.5 / (0.5 * 0.75)) + 0.25 * log(0.25 / (0.5 * 0.75)) + 0.25 * log(0.25 / (0.5 * 0.25))) / ((h(pTrue) + h(pPred)) / 2)
        XCTAssertEqual(Analysis.normalizedMutualInformation([0, 0, 1, 1], [0, 0, 0, 1]), expected, accuracy: 1e-12)
    }

    func testKMeansRecoversWellSeparatedBlobs() throws {
        let (x, labels) = blobs(k: 4, perClass: 50, d: 6, spread: 10, seed: 4)
        let km = try KMeans.fit(x, k: 4, seed: 1)
        XCTAssertEqual(Analysis.normalizedMutualInformation(labels.ids, km.assignments), 1, accuracy: 1e-9)
    }

    func testProbeIsAtTheRegularisedOptimum() {
        // Independent check of the objective: the gradient of C Σ CE + ½‖W‖², computed here from the definition,
        // vanishes at the fitted weights (three classes: softmax; two classes: logistic).
        for k in [2, 3] {
            let (x, labels) = blobs(k: k, perClass: 30, d: 4, spread: 1, seed: UInt64(10 + k))
            let C = 0.7
            let probe = LogisticRegression.fit(x, labels.ids, classCount: k, C: C, tolerance: 1e-9)
            let m = k == 2 ? 1 : k, d = 4
            var grad = [Double](repeating: 0, count: (d + 1) * m)
            for i in 0..<x.rows {
                var z = (0..<m).map { c in probe.intercepts[c] + (0..<d).reduce(0.0) { $0 + Double(x[i, $1]) * probe.weights[$1 * m + c] } }
                var p: [Double]
                if m == 1 { p = [1 / (1 + exp(-z[0]))]; z = [] } else { let e = z.map { exp($0 - z.max()!) }; p = e.map { $0 / e.reduce(0, +) } }
                for c in 0..<m {
                    let y = m == 1 ? Double(labels.ids[i]) : (labels.ids[i] == c ? 1 : 0)
                    for j in 0..<d { grad[j * m + c] += C * (p[c] - y) * Double(x[i, j]) }
                    grad[d * m + c] += C * (p[c] - y)
                }
            }
            for j in 0..<(d * m) { grad[j] += probe.weights[j] }
            XCTAssertLessThan(grad.map(abs).max()!, 1e-4, "k = \(k)")
        }
    }

    func testFisherRidgeAndDegenerateLabels() throws {
        let (x, labels) = blobs(k: 3, perClass: 20, d: 4, spread: 2, seed: 5)
        let plain = try Analysis.fisherRatio(x, labels)
        XCTAssertEqual(plain.ridge, 0)
        XCTAssertGreaterThan(plain.value, 0)
        // duplicate column: S_w singular → documented ridge, finite value
        let dup = FloatMatrix(rows: x.rows, cols: 5)
        for i in 0..<x.rows { for j in 0..<4 { dup[i, j] = x[i, j] }; dup[i, 4] = x[i, 0] }
        let ridged = try Analysis.fisherRatio(dup, labels)
        XCTAssertGreaterThan(ridged.ridge, 0)
        XCTAssertTrue(ridged.value.isFinite)
        // one class, fewer examples than classes
        let one = Labels([Int](repeating: 7, count: x.rows))
        XCTAssertThrowsError(try Analysis.silhouette(x, one))
        XCTAssertThrowsError(try Analysis.linearProbe(x, one))
        let tiny = x.selectingRows([0, 1, 2])
        XCTAssertThrowsError(try Analysis.daviesBouldin(tiny, Labels([0, 1, 2])))
        let nan = x.copy(); nan[0, 0] = .nan
        XCTAssertThrowsError(try Analysis.calinskiHarabasz(nan, labels))
    }
}
