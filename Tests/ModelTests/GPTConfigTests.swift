import XCTest
@testable import RuleLensModel

final class GPTConfigTests: XCTestCase {
    func testHeadsMustDivideDModel() {
        XCTAssertThrowsError(try GPTConfig(nLayer: 1, nHead: 3, dModel: 16, nCtx: 8, vocabSize: 10).validate()) { error in
            XCTAssertTrue(String(describing: error).contains("not divisible"))
        }
        XCTAssertNoThrow(try GPTConfig(nLayer: 1, nHead: 4, dModel: 16, nCtx: 8, vocabSize: 10).validate())
    }
}
