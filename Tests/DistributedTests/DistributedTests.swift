import Foundation
import XCTest
@testable import RuleLensDistributed

/// Without mpirun: one rank, every collective a no-op. (The multi-rank behaviour is tested under mpirun from
/// Python: Tests/Python/test_mpi.py.)
final class DistributedTests: XCTestCase {
    func testOneRankWithoutLauncher() throws {
        // Checks the behaviour without mpirun: run under a launcher it fails (never skips).
        XCTAssertFalse(Communicator.launchedByMPI, "run the Swift tests without mpirun; multi-rank runs are tested from Python")
        let world = Communicator.world
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertFalse(world.usesMPI)
        XCTAssertTrue(world.isRoot)
        var values: [Float] = [1, 2, 3]
        values.withUnsafeMutableBufferPointer { world.allreduceSum($0.baseAddress!, count: 3) }
        XCTAssertEqual(values, [1, 2, 3])
        XCTAssertEqual(world.sum(2.5), 2.5)
        XCTAssertEqual(world.allgather("x"), ["x"])
        XCTAssertEqual(world.broadcast("y"), "y")
        XCTAssertNoThrow(try world.agree([AgreementItem("options", "{\"a\":1}")]))
        world.barrier()
    }

    /// One rank: the reducer leaves gradient and loss exactly as they were (the one-process run is unchanged).
    func testOneRankReducerIsIdentity() throws {
        // Checks the behaviour without mpirun: run under a launcher it fails (never skips).
        XCTAssertFalse(Communicator.launchedByMPI, "run the Swift tests without mpirun; multi-rank runs are tested from Python")
        let reducer = DataParallel()
        var grads: [Float] = [0.5, -1.25, 3]
        let loss = grads.withUnsafeMutableBufferPointer {
            reducer.reduce(gradients: $0.baseAddress!, count: 3, localLoss: 1.75, localWeight: 3, globalWeight: 7)
        }
        XCTAssertEqual(loss, 1.75)
        XCTAssertEqual(grads, [0.5, -1.25, 3])
        XCTAssertEqual(reducer.rows(ofGlobalBatch: 5), 0..<5)
    }

    /// Every row of a global batch belongs to exactly one rank, contiguously, in rank order.
    func testRowSlicesPartitionTheBatch() {
        for ranks in 1...5 {
            for rows in ranks...13 {
                var covered: [Int] = []
                for r in 0..<ranks {
                    let range = (rows * r / ranks)..<(rows * (r + 1) / ranks)
                    XCTAssertFalse(range.isEmpty)
                    covered += Array(range)
                }
                XCTAssertEqual(covered, Array(0..<rows))
            }
        }
    }

    func testJSONDifferencesNameTheKeys() {
        let d = Communicator.jsonDifferences("{\"steps\":10,\"lr\":0.001}", "{\"steps\":5,\"lr\":0.001}", otherRank: 3)
        XCTAssertEqual(d, "steps: rank 0 has 10, rank 3 has 5")
        XCTAssertNil(Communicator.jsonDifferences("abc", "abd", otherRank: 1))
    }

    func testFingerprintsSeeEveryByte() {
        let a = Communicator.fnv1a(Data([1, 2, 3, 4, 5, 6, 7, 8, 9]))
        XCTAssertNotEqual(a, Communicator.fnv1a(Data([1, 2, 3, 4, 5, 6, 7, 8, 10])))
        XCTAssertNotEqual(a, Communicator.fnv1a(Data([0, 2, 3, 4, 5, 6, 7, 8, 9])))
        XCTAssertEqual(a, Communicator.fnv1a(Data([1, 2, 3, 4, 5, 6, 7, 8, 9])))
        XCTAssertFalse(Communicator.binaryFingerprint().isEmpty)
    }
}
