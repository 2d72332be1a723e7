import Foundation
import RuleLensJobs
import RuleLensNumerics

/// A JSON value, for the parts of a verb's result that a job builds as a nested report (the interventions' tables
/// of cells, sites and stages). Decoded from the job's JSON (non-finite numbers already `null`), encoded as is.
public indirect enum ReportValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ReportValue])
    case object([String: ReportValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ReportValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ReportValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// A job's report (`ProbeReport.json`: dictionaries, arrays, strings, numbers; non-finite numbers become null).
    public static func report(_ json: [String: Any]) throws -> [String: ReportValue] {
        try JSONDecoder().decode([String: ReportValue].self, from: try JSONText.data(json))
    }

    /// A job's report as JSON bytes.
    public static func report(_ data: Data) throws -> [String: ReportValue] {
        try JSONDecoder().decode([String: ReportValue].self, from: data)
    }

    public subscript(_ key: String) -> ReportValue? { if case .object(let o) = self { return o[key] } else { return nil } }
    public var array: [ReportValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    /// A number (null: nil).
    public var number: Double? {
        switch self { case .int(let i): return Double(i); case .double(let d): return d; default: return nil }
    }
}

/// Encodes a report's keys and then the verb's typed summaries beside them, as one object.
struct ReportKey: CodingKey {
    var stringValue: String; var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedEncodingContainer where K == ReportKey {
    mutating func encode(report: [String: ReportValue]) throws {
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

/// Creates a verb's `--out` folder (when missing) and runs `body`; if `body` throws, a folder created here is removed
/// again, so a refused run leaves nothing behind.
func inOutFolder<T>(_ folder: String?, _ body: () throws -> T) throws -> T {
    guard let folder else { return try body() }
    let created = !FileManager.default.fileExists(atPath: folder)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    do { return try body() } catch {
        if created { try? FileManager.default.removeItem(atPath: folder) }
        throw error
    }
}
