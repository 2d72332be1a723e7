import XCTest
@testable import RuleLensStore

final class HDF5LibraryTests: XCTestCase {
    func testLinkedVersionIsOneDotSomething() {
        XCTAssertTrue(HDF5Library.version.hasPrefix("1."), HDF5Library.version)
    }
}
