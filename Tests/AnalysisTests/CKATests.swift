import XCTest
import RuleLensNumerics
@testable import RuleLensAnalysis

final class CKATests: XCTestCase {
    func testIdentityOrthogonalAndScaleInvariance() throws {
        let x = randomMatrix(80, 12, seed: 21)
        for i in 0..<x.rows { for j in 0..<x.cols { x[i, j] *= Float(j + 1) } }
        XCTAssertEqual(try Analysis.linearCKA(x, x), 1, accuracy: 1e-5)
        // Orthogonal Q from the SVD of a random square matrix.
        let q = try LinearAlgebra.svd(randomMatrix(12, 12, seed: 22)).u
        let rotated = FloatMatrix(rows: 80, cols: 12)
        BLAS.sgemm(.none, .none, m: 80, n: 12, k: 12, x.ptr, q.ptr, rotated.ptr)
        let scaled = rotated.copy()
        for i in 0..<scaled.count { scaled.ptr[i] *= 3.5 }
        let y = randomMatrix(80, 7, seed: 23)
        let base = try Analysis.linearCKA(x, y)
        XCTAssertEqual(try Analysis.linearCKA(rotated, y), base, accuracy: 1e-5)
        XCTAssertEqual(try Analysis.linearCKA(scaled, y), base, accuracy: 1e-5)
        XCTAssertEqual(try Analysis.linearCKA(x, scaled), 1, accuracy: 1e-5)
        XCTAssertGreaterThanOrEqual(base, 0); XCTAssertLessThan(base, 1)
    }

    func testGramAndFeaturePathsAgree() throws {
        // n = 10 < d: the Gram path; compared against the feature-space formula computed here directly.
        let x = randomMatrix(10, 40, seed: 31), y = randomMatrix(10, 30, seed: 32)
        let xc = Analysis.centred(x), yc = Analysis.centred(y)
        let cross = Analysis.frobeniusSquared(xc, yc), sx = Analysis.frobeniusSquared(xc, xc), sy = Analysis.frobeniusSquared(yc, yc)
        XCTAssertEqual(try Analysis.linearCKA(x, y), cross / (sx * sy).squareRoot(), accuracy: 1e-5)
        let matrix = try Analysis.ckaMatrix([x, y, x], names: ["a", "b", "c"])
        XCTAssertEqual(matrix[0][2], 1, accuracy: 1e-5)
        XCTAssertEqual(matrix[0][1], matrix[1][0])
    }

    func testConstantSiteIsAnError() {
        let x = randomMatrix(10, 4, seed: 1)
        let constant = FloatMatrix(rows: 10, cols: 4, values: [Float](repeating: 1, count: 40))
        XCTAssertThrowsError(try Analysis.linearCKA(x, constant))
    }

    func testSiteOrderPutsLayersSideBySide() {
        let sites = ["blocks.1.hook_mlp_out", "blocks.0.hook_mlp_out", "blocks.1.hook_attn_out", "hook_embed",
                     "blocks.0.hook_attn_out", "ln_final.hook_normalized", "blocks.10.hook_attn_out"]
        XCTAssertEqual(sites.sorted(by: SiteOrder.precedes),
                       ["hook_embed", "blocks.0.hook_attn_out", "blocks.0.hook_mlp_out", "blocks.1.hook_attn_out",
                        "blocks.1.hook_mlp_out", "blocks.10.hook_attn_out", "ln_final.hook_normalized"])
        XCTAssertTrue(SiteOrder.glob("blocks.*.hook_*_out", matches: "blocks.3.hook_attn_out"))
        XCTAssertFalse(SiteOrder.glob("blocks.*.hook_mlp_out", matches: "blocks.3.hook_attn_out"))
        XCTAssertEqual(SiteOrder.closest(to: "blocks.0.hook_resid_pots", in: ["blocks.0.hook_resid_post", "hook_embed"]), "blocks.0.hook_resid_post")
    }
}
