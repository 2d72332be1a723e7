import XCTest
@testable import RuleLensTasks
import RuleLensNumerics

final class TokenizerTests: XCTestCase {
    func testRoundTripAndVocabulary() throws {
        let tok = CharTokenizer.standard
        XCTAssertEqual(tok.count, 99)
        let text = "Rabbits have 4 legs.\n98+7,,C:0"
        XCTAssertEqual(tok.decode(try tok.encode(text)), text)
        XCTAssertEqual(try CharTokenizer(vocab: tok.vocab), tok)
    }

    func testUnknownCharacterNamesItAndItsPosition() {
        XCTAssertThrowsError(try CharTokenizer.standard.encode("ab\u{00E9}c", context: "line 3 of x.jsonl")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("\"\u{00E9}\""), message)
            XCTAssertTrue(message.contains("position 3"), message)
            XCTAssertTrue(message.contains("line 3 of x.jsonl"), message)
        }
    }
}
