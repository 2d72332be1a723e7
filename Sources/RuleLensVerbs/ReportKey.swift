import Foundation
import RuleLensJobs
import RuleLensNumerics

/// Encodes a report's keys and then the verb's typed summaries beside them, as one object.
struct ReportKey: CodingKey {
    var stringValue: String; var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedEncodingContainer where K == ReportKey {
    mutating func encode(report: [String: JSONValue]) throws {
        for (k, v) in report { try encode(v, forKey: ReportKey(k)) }
    }
}

/// Refuses to replace a file in a verb's `--out` folder unless `force`; returns its path.
func outputFile(_ folder: String, _ name: String, force: Bool) throws -> String {
    let path = (folder as NSString).appendingPathComponent(name)
    if !force && FileManager.default.fileExists(atPath: path) {
        throw RuleLensError("\(path) already exists", fix: "choose another --out folder, or pass --force to replace it")
    }
    return path
}

/// Creates a verb's `--out` folder (when missing) and runs `body`; if the verb fails, the verb's `OutputCommit`
/// removes a folder created here again, so a refused run leaves nothing behind.
func inOutFolder<T>(_ folder: String?, _ body: () throws -> T) throws -> T {
    if let folder { try OutputCommit.createFolder(folder) }
    return try body()
}
