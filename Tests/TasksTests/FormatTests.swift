import XCTest
@testable import RuleLensTasks
import RuleLensNumerics

final class FormatTests: XCTestCase {
    /// PAPERS.md's scratchpad for 98+7, verbatim.
    func testScratchpadIsThePublishedTrace() {
        let e = OperandTasks.example(task: .addition, a: 98, b: 7, format: .scratchpad)
        XCTAssertEqual(e.prompt, "98+7=")
        XCTAssertEqual(e.target, "98+7,,C:0\n9+,5,C:1\n+,05,C:1\n+,105,C:0\n105")
    }

    func testDirectFormatsOfThePublishedExamples() {
        XCTAssertEqual(OperandTasks.example(task: .addition, a: 40, b: 47, format: .direct).target, "87")
        XCTAssertEqual(OperandTasks.example(task: .modularAddition, a: 112, b: 112, format: .direct).target, "111")
        // 44+52 in base 9 is 40+47 in decimal.
        let b9 = OperandTasks.example(task: .base9Addition, a: 40, b: 47, format: .direct)
        XCTAssertEqual(b9.prompt, "44+52="); XCTAssertEqual(b9.target, "106")
        let lin = OperandTasks.example(task: .linearRegression, a: 0, b: 5, format: .direct)
        XCTAssertEqual(lin.prompt, "(0,5)="); XCTAssertEqual(lin.target, "13")
        let farm = OperandTasks.example(task: .chickensRabbits, a: 67, b: 40, format: .direct)
        XCTAssertEqual(farm.prompt, "Rabbits have 4 legs and 1 head. Chickens have 2 legs and 1 head. There are 134 legs "
                       + "and 40 heads on the farm. How many rabbits and chickens are there?")
        XCTAssertEqual(farm.target, "There are 27 rabbits and 13 chickens.")
        let compact = OperandTasks.example(task: .chickensRabbits, a: 67, b: 40, format: .compact)
        XCTAssertEqual(compact.prompt, "134,40="); XCTAssertEqual(compact.target, "27,13")
        XCTAssertEqual(compact.sources, [[0, 1, 2, 4, 5], [0, 1, 2, 4, 5], [], [0, 1, 2, 4, 5], [0, 1, 2, 4, 5]])
        XCTAssertEqual(compact.answer, "27,13"); XCTAssertEqual(compact.rule, farm.rule)
    }

    /// `compact` is the word problem's form only; the additions' direct form is already compact.
    func testCompactIsOnlyForChickensAndRabbits() {
        XCTAssertThrowsError(try TaskSpec(task: .addition, format: .compact).validate()) { error in
            XCTAssertTrue("\(error)".contains("format compact is not defined for task addition"), "\(error)")
            XCTAssertTrue("\(error)".contains("chickens-rabbits"), "\(error)")
        }
        XCTAssertThrowsError(try TaskSpec(task: .chickensRabbits, format: .scratchpad).validate())
        XCTAssertNoThrow(try TaskSpec(task: .chickensRabbits, format: .compact, split: .leaveSquareOut).validate())
    }

    /// The true answer, computed here independently of the generators.
    func trueAnswer(_ task: TaskName, _ a: Int, _ b: Int) -> String {
        switch task {
        case .addition, .multiDigitAddition: return String(a + b)
        case .modularAddition: return String((a + b) % 113)
        case .base9Addition:
            var n = a + b, s = ""
            repeat { s = String(n % 9) + s; n /= 9 } while n > 0
            return s
        case .linearRegression: return String(a + 2 * b + 3)
        default: return "There are \(a - b) rabbits and \(2 * b - a) chickens."
        }
    }

    func trueAnswer(_ task: TaskName, _ format: TaskFormat, _ a: Int, _ b: Int) -> String {
        format == .compact ? "\(a - b),\(2 * b - a)" : trueAnswer(task, a, b)
    }

    /// Every generated example of every format: the extracted answer is the true one, and the scratchpad and
    /// rule traces are arithmetically consistent line by line.
    func testExtractedAnswerIsTheTrueAnswerForEveryExample() throws {
        var checked = 0
        for task in TaskName.allCases where !task.isRuleTask {
            for format in task.formats {
                var s = TaskSpec(task: task, format: format, split: .random)
                if task == .multiDigitAddition { s.count = 300; s.digits = 1...12 }
                let d = try s.generate()
                for e in d.train + d.test {
                    let truth = trueAnswer(task, format, e.a!, e.b!)
                    XCTAssertEqual(Answer.extract(e.target), truth, "\(task) \(format) \(e.prompt)")
                    XCTAssertEqual(e.answer, truth)
                    if format == .scratchpad { try checkScratchpad(e, task: task) }
                    if format == .rule { try checkRuleTrace(e, task: task) }
                    checked += 1
                }
            }
        }
        for task in TaskName.allCases where task.isRuleTask {
            var s = TaskSpec(task: task)
            s.count = 200
            for e in try s.generate().train { XCTAssertEqual(Answer.extract(e.target), e.answer); checked += 1 }
        }
        XCTAssertGreaterThan(checked, 100_000)
    }

    func base(_ task: TaskName) -> Int { task == .base9Addition ? 9 : 10 }

    /// Each scratchpad state line: the remaining operands are prefixes of the originals and the partial
    /// result equals the low digits of the sum with the stated carry.
    func checkScratchpad(_ e: Example, task: TaskName) throws {
        let lines = e.target.split(separator: "\n").map(String.init)
        let b = base(task)
        let sum = e.a! + e.b!
        for line in lines where line.contains(",C:") {
            let parts = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(parts.count, 3, line)
            let partial = parts[1]
            let carry = Int(parts[2].dropFirst(2))!
            if partial.isEmpty { XCTAssertEqual(carry, 0); continue }
            let k = partial.count
            let low = Int(partial, radix: b)!
            var modulus = 1
            for _ in 0..<k { modulus *= b }
            // partial = low k digits of the sum; carry = what flows into digit k (only while digits remain).
            XCTAssertEqual(low, sum % modulus, "\(e.prompt): \(line)")
            if line.hasPrefix("+,") && carry == 0 { XCTAssertEqual(low, sum, line) }
        }
    }

    /// Re-does every `total=…` line and checks the digits, carries and returned value.
    func checkRuleTrace(_ e: Example, task: TaskName) throws {
        let b = base(task)
        XCTAssertTrue(e.prompt.contains("total%\(b)"))
        XCTAssertTrue(e.prompt.hasSuffix("add(\(String(e.a!, radix: b)),\(String(e.b!, radix: b)))="))
        var carry = 0
        var digits: [Int] = []
        for line in e.target.split(separator: "\n") where line.hasPrefix("total=digit1+digit2+carry=") {
            let rhs = line.split(separator: "=")
            let terms = rhs[2].split(separator: "+").map { Int($0)! }
            XCTAssertEqual(terms[2], carry, "\(e.prompt): carry in \(line)")
            XCTAssertEqual(terms.reduce(0, +), Int(rhs[3])!)
            digits.insert(Int(rhs[3])! % b, at: 0)
            carry = Int(rhs[3])! / b
        }
        if carry > 0 { digits.insert(carry, at: 0) }
        let value = digits.reduce(0) { $0 * b + $1 }
        XCTAssertEqual(value, e.a! + e.b!, e.prompt)
    }

    /// Every task and format tokenizes with the standard character vocabulary (no unknown characters).
    func testEveryTaskFitsTheCharacterVocabulary() throws {
        let tok = CharTokenizer.standard
        for task in TaskName.allCases {
            for format in task.formats {
                var s = TaskSpec(task: task, format: format)
                if !task.hasPlane { s.count = 600 }
                let d = try s.generate()
                for e in d.train + d.test {
                    _ = try tok.encode(e.prompt, context: "\(task.rawValue) prompt")
                    _ = try tok.encode(e.target, context: "\(task.rawValue) target")
                }
            }
        }
    }

    func testAnswerExtraction() {
        XCTAssertEqual(Answer.extract("87"), "87")
        XCTAssertEqual(Answer.extract("98+7,,C:0\n+,105,C:0\n105\n"), "105")
        XCTAssertEqual(Answer.extract("a\n  42  \n\n"), "42")
        XCTAssertEqual(Answer.extract(""), "")
    }
}
