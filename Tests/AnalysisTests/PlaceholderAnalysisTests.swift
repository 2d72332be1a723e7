import XCTest
@testable import RuleLensAnalysis

final class AnalysisModuleTests: XCTestCase {
    func testModuleLinks() { _ = Analysis.self }
}
