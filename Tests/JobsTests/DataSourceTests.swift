import XCTest
import Foundation
@testable import RuleLensJobs
import RuleLensTasks

final class DataSourceTests: XCTestCase {
    /// `--part all` joins train and test; ids must stay unique (each file numbers its rows from 0).
    func testPartAllHasUniqueIdsFromSpecAndDirectory() throws {
        var spec = TaskSpec(task: .addition, split: .random, seed: 3)
        spec.trainFraction = 0.7
        let fromSpec = try DataSource(spec: spec).load(.all).examples
        XCTAssertEqual(fromSpec.map { $0.id }, Array(0..<fromSpec.count).map { Optional($0) })

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rl-part-all-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DataSets.write(try spec.generate(), to: dir, force: false)
        let fromDir = try DataSource(file: dir).load(.all).examples
        XCTAssertEqual(fromDir.map { $0.id }, fromSpec.map { $0.id })
        XCTAssertEqual(fromDir.map { $0.prompt }, fromSpec.map { $0.prompt })
    }
}
