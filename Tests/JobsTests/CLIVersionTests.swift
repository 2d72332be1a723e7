import XCTest
import Foundation
import RuleLensJobs
import RuleLensNumerics

/// Runs the built `rulelens` binary the way a user does.
enum CLI {
    static var binary: URL {
        // Tests run from .build/<config>/; the executable sits beside the test bundle.
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("rulelens")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/rulelens")
    }

    /// Runs rulelens with `args`; returns (exit code, stdout, stderr).
    @discardableResult
    static func run(_ args: [String], cwd: URL? = nil) throws -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

final class CLIVersionTests: XCTestCase {
    func testVersionPrints() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.code, 0)
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), RuleLensVersion.string)
    }
}
