import Foundation
import RuleLensNumerics
import RuleLensStore

/// What a probe job produces: a text table for the terminal, a JSON value for `--json`.
public struct ProbeReport {
    /// Human-readable table (stdout).
    public var table: String
    /// Machine-readable result (`--json`): dictionaries, arrays, strings, numbers, booleans.
    public var json: [String: Any]
    /// Files written (HDF5, SVG), for the caller to mention.
    public var written: [String] = []

    /// `json` serialised with sorted keys (non-finite numbers as null, through `JSONText`).
    public func jsonText() throws -> String { try JSONText.string(json, pretty: true) }
}

/// A fixed-width text table.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let widths = header.indices.map { c in ([header[c]] + rows.map { c < $0.count ? $0[c] : "" }).map(\.count).max() ?? 0 }
        // Text columns left-aligned, numeric columns right-aligned.
        let numeric = header.indices.map { c in rows.allSatisfy { c >= $0.count || Double($0[c]) != nil || $0[c] == "-" } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in
                let pad = String(repeating: " ", count: max(0, widths[c] - s.count))
                return numeric[c] && !rows.isEmpty ? pad + s : s + pad
            }.joined(separator: "  ")
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
            .joined(separator: "\n")
    }
}

func fmt(_ v: Double?, _ digits: Int = 4) -> String {
    guard let v, v.isFinite else { return "-" }   // not a number is no result: printed as "-" (null in JSON), never "nan"
    if abs(v) >= 1e5 { return String(format: "%.3e", v) }
    return String(format: "%.\(digits)f", v)
}

/// Writes an HDF5 results file atomically: built under a temporary name beside the target, renamed on success,
/// removed on failure. An existing target is an error unless `overwrite`.
func writeResultsHDF5(_ path: String, overwrite: Bool, _ body: (HDF5File) throws -> Void) throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: path) && !overwrite {
        throw RuleLensError("\(path) already exists", fix: "choose another --out path or pass --force to replace it")
    }
    let dir = (path as NSString).deletingLastPathComponent
    if !dir.isEmpty && !fm.fileExists(atPath: dir) {
        throw RuleLensError("the folder of --out \(path) does not exist", fix: "create \(dir) first")
    }
    try AtomicFile.produce(path) { temp in
        let file = try HDF5File.create(temp, overwrite: true)
        // Closed on every path: an HDF5 file left open fails again (and can crash) when the library shuts down.
        defer { file.close() }
        try body(file)
        try file.flush()
    }
}

/// Writes text to a file atomically (temp + rename); an existing file needs `overwrite`.
func writeTextAtomically(_ text: String, to path: String, overwrite: Bool) throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: path) && !overwrite {
        throw RuleLensError("\(path) already exists", fix: "choose another --plot path or pass --force to replace it")
    }
    try AtomicFile.write(Data(text.utf8), to: path)
}

extension HDF5Location {
    /// A float64 dataset of `shape` holding `values` (row-major).
    func writeDoubles(_ name: String, _ values: [Double], shape: [Int]) throws {
        let ds = try createDataset(name, type: .float64, shape: shape)
        if let n = shape.first, n > 0 { try values.withUnsafeBytes { try ds.writeRows(start: 0, count: n, $0.baseAddress!) } }
    }

    /// A float32 dataset of `shape` from a matrix.
    func writeMatrix(_ name: String, _ m: FloatMatrix) throws {
        let ds = try createDataset(name, type: .float32, shape: [m.rows, m.cols])
        if m.rows > 0 { try ds.writeRows(start: 0, count: m.rows, m.ptr) }
    }

    /// An int64 1-D dataset.
    func writeInts(_ name: String, _ values: [Int]) throws {
        let ds = try createDataset(name, type: .int64, shape: [values.count])
        let v = values.map { Int64($0) }
        if !v.isEmpty { try v.withUnsafeBytes { try ds.writeRows(start: 0, count: v.count, $0.baseAddress!) } }
    }

    /// A 1-D UTF-8 string dataset.
    func writeStrings(_ name: String, _ values: [String]) throws {
        let ds = try createDataset(name, type: .string, shape: [values.count])
        try ds.writeStrings(start: 0, values)
    }
}

/// Inserts `.suffix` before the extension of `path` (plots of a sweep: one file per site).
func suffixed(_ path: String, _ suffix: String) -> String {
    let ns = path as NSString
    let ext = ns.pathExtension
    let base = ext.isEmpty ? path : ns.deletingPathExtension
    let safe = suffix.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" }
    return base + "." + String(safe) + (ext.isEmpty ? "" : "." + ext)
}

/// The position as the user writes it on the command line.
func positionText(_ p: PositionSelector) -> String {
    switch p {
    case .last: return "last"
    case .answer: return "answer"
    case .mean: return "mean"
    case .index(let k): return String(k)
    }
}
