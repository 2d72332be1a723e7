import Foundation
import RuleLensNumerics

/// A row-major float matrix read from a store: `rows` × `cols` values.
public struct ActivationMatrix {
    public let rows: Int
    public let cols: Int
    /// Row-major values, rows × cols.
    public let values: FloatBuffer

    public init(rows: Int, cols: Int, values: FloatBuffer) {
        precondition(values.count == rows * cols, "matrix values must hold rows × cols floats")
        self.rows = rows; self.cols = cols; self.values = values
    }

    /// Element (r, c).
    public subscript(r: Int, c: Int) -> Float { values[r * cols + c] }
}

/// Which position of a site to take for each example when reducing [N, pos, …] to [N, …].
public enum PositionSelector: Equatable, Sendable {
    /// The last real token (position `length - 1`, the `<eos>`).
    case last
    /// The last prompt position, whose output predicts the first target character (`/meta/answer_pos`).
    case answer
    /// A fixed position K (negative: counted back from the end of each example, -1 = last).
    case index(Int)
    /// The mean over the example's real positions (0 ..< length).
    case mean

    /// Parses "last", "answer", "mean" or an integer.
    public init(parsing text: String) throws {
        switch text {
        case "last": self = .last
        case "answer": self = .answer
        case "mean": self = .mean
        default:
            guard let k = Int(text) else {
                throw RuleLensError("position \"\(text)\" is not last, answer, mean or an integer", fix: "pass e.g. --position last or --position 3")
            }
            self = .index(k)
        }
    }
}

/// Description of one /acts dataset.
public struct ActivationSiteInfo: Equatable, Sendable {
    /// Hook name.
    public let name: String
    /// Full shape including the example axis.
    public let shape: [Int]
    /// Axis names including "example".
    public let dims: [String]
    /// Index (in `shape`) of the position axis that selectors act on ("pos" or "q_pos"), nil if one position was kept.
    public var positionAxis: Int? { dims.firstIndex(of: "pos") ?? dims.firstIndex(of: "q_pos") }
}

/// Opens and validates an activation file and reads sites, positions and meta columns from it.
public final class ActivationStoreReader {
    public let path: String
    /// Whether the writer finished (`complete` = 1).
    public let complete: Bool
    /// Examples available (the flushed count for incomplete files).
    public let count: Int
    /// Position mode the file was written with ("all", "last", "answer" or an index).
    public let positions: String
    /// Hook names in forward order.
    public let hooks: [String]
    /// The model configuration JSON (GPTConfig).
    public let modelConfigJSON: String
    /// Sites present under /acts, in hook order.
    public let sites: [ActivationSiteInfo]
    /// Names of the /meta columns.
    public let metaColumns: [String]

    let file: HDF5File

    /// Opens `path`. Files that are missing, not HDF5, truncated, corrupt, not RuleLens activation files, or
    /// incomplete (unless `allowIncomplete`) are errors that say which and what to do.
    public init(path: String, allowIncomplete: Bool = false) throws {
        self.path = path
        file = try HDF5File.open(path)
        guard file.hasAttribute("format"), (try? file.stringAttribute("format")) == ActivationStoreFormat.name else {
            throw RuleLensError("\(path) is an HDF5 file but not a RuleLens activation file (no format=\"\(ActivationStoreFormat.name)\" attribute)",
                                fix: "pass a file written by `rulelens dump`, or read a plain 2-D dataset with ActivationStoreReader.readMatrix(path:dataset:)")
        }
        let version = try file.intAttribute("format_version")
        guard version >= 1 && version <= ActivationStoreFormat.version else {
            throw RuleLensError("\(path) has format_version \(version); this RuleLens reads up to \(ActivationStoreFormat.version)",
                                fix: "upgrade RuleLens, or re-dump with this version")
        }
        complete = try file.intAttribute("complete") == 1
        let written = try file.intAttribute("examples_written")
        if !complete && !allowIncomplete {
            throw RuleLensError("\(path) is incomplete (complete=0: the dump that wrote it stopped after \(written) examples)",
                                fix: "finish it with `rulelens dump … --resume --out \(path)`, or rerun the dump with --force")
        }
        positions = try file.stringAttribute("positions")
        modelConfigJSON = try file.stringAttribute("model_config")
        let hooksJSON = try file.stringAttribute("hooks")
        guard let list = try? JSONSerialization.jsonObject(with: Data(hooksJSON.utf8)) as? [String] else {
            throw RuleLensError("\(path) has a malformed hooks attribute", fix: "re-dump the file with --force")
        }
        hooks = list
        let metaGroup = try file.openGroup(ActivationStoreFormat.metaGroup)
        metaColumns = try metaGroup.childNames()
        let actsGroup = try file.openGroup(ActivationStoreFormat.actsGroup)
        let present = Set(try actsGroup.childNames())
        var infos: [ActivationSiteInfo] = []
        var n = written
        for name in list where present.contains(name) {
            let ds = try actsGroup.openDataset(name)
            let shape = try ds.shape()
            let dims = try ds.stringAttribute("dims").split(separator: ",").map(String.init)
            guard dims.count == shape.count else {
                throw RuleLensError("/acts/\(name) in \(path) has dims \(dims) but rank \(shape.count)", fix: "re-dump the file with --force")
            }
            n = min(n, shape[0])
            infos.append(ActivationSiteInfo(name: name, shape: shape, dims: dims))
        }
        count = n
        sites = infos.map { ActivationSiteInfo(name: $0.name, shape: [n] + $0.shape.dropFirst(), dims: $0.dims) }
    }

    /// The description of one site; unknown names list the sites present.
    public func site(_ name: String) throws -> ActivationSiteInfo {
        guard let info = sites.first(where: { $0.name == name }) else {
            throw RuleLensError("\(path) has no site \(name)",
                                fix: "use one of: \(sites.map(\.name).joined(separator: ", "))")
        }
        return info
    }

    private func dataset(_ site: String) throws -> HDF5Dataset {
        _ = try self.site(site)
        return try file.openDataset("\(ActivationStoreFormat.actsGroup)/\(site)", cacheBytes: 16 << 20)
    }

    private func checkRange(_ range: Range<Int>) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw RuleLensError("examples \(range.lowerBound)..<\(range.upperBound) are outside \(path) (0..<\(count))",
                                fix: "ask for examples within 0..<\(count)")
        }
    }

    /// Reads examples `range` of a site, full rows: shape [range.count] + row shape.
    public func read(site name: String, examples range: Range<Int>? = nil) throws -> (shape: [Int], values: FloatBuffer) {
        let info = try site(name)
        let range = range ?? 0..<count
        try checkRange(range)
        let rowElements = info.shape.dropFirst().reduce(1, *)
        let out = FloatBuffer(count: range.count * rowElements)
        try dataset(name).readRows(start: range.lowerBound, count: range.count, as: .float32, into: UnsafeMutableRawPointer(out.ptr))
        return ([range.count] + info.shape.dropFirst(), out)
    }

    /// Reads one position per example as an [N, d] matrix (d = the product of the other axes).
    /// Sites stored with one position (files dumped with --positions last/answer/K) need `position` nil,
    /// or the same selector they were dumped with.
    public func readPosition(site name: String, _ position: PositionSelector?, examples range: Range<Int>? = nil) throws -> ActivationMatrix {
        let info = try site(name)
        let range = range ?? 0..<count
        try checkRange(range)
        let ds = try dataset(name)
        let rowElements = info.shape.dropFirst().reduce(1, *)
        guard let axis = info.positionAxis else {
            if let position, (try? PositionSelector(parsing: positions)) != position {
                throw RuleLensError("\(path) keeps only position \"\(positions)\" of \(name), so position \(position) is not available",
                                    fix: "omit the position (or pass \(positions)), or re-dump with --positions all")
            }
            let out = FloatBuffer(count: range.count * rowElements)
            try ds.readRows(start: range.lowerBound, count: range.count, as: .float32, into: UnsafeMutableRawPointer(out.ptr))
            return ActivationMatrix(rows: range.count, cols: rowElements, values: out)
        }
        guard let position else {
            throw RuleLensError("\(name) in \(path) has a position axis; say which position to take",
                                fix: "pass a position: last, answer, mean or an index")
        }
        // Row layout: [outer…, P, inner…]; the result drops the P axis.
        let P = info.shape[axis]
        let outer = info.shape[1..<axis].reduce(1, *)
        let inner = info.shape[(axis + 1)...].reduce(1, *)
        let cols = outer * inner
        let lengths = try intColumn("length", examples: range)
        let answers = position == .answer ? try intColumn("answer_pos", examples: range) : []
        let out = FloatBuffer(count: range.count * cols)
        // Read in blocks of whole examples so memory stays bounded by the block, not the file.
        let block = max(1, min(range.count, (32 << 20) / max(1, 4 * rowElements)))
        let rows = FloatBuffer(count: block * rowElements)
        var start = range.lowerBound
        while start < range.upperBound {
            let n = min(block, range.upperBound - start)
            try ds.readRows(start: start, count: n, as: .float32, into: UnsafeMutableRawPointer(rows.ptr))
            for e in 0..<n {
                let idx = start - range.lowerBound + e
                let length = lengths[idx]
                let src = rows.ptr + e * rowElements
                let dst = out.ptr + idx * cols
                var picks: [Int]
                switch position {
                case .last: picks = [length - 1]
                case .answer: picks = [answers[idx]]
                case .index(let k): picks = [k >= 0 ? k : length + k]
                case .mean: picks = Array(0..<length)
                }
                for p in picks where p < 0 || p >= min(length, P) {
                    throw RuleLensError("position \(p) is outside example \(start + e) of \(path) (length \(length))",
                                        fix: "choose a position below every example's length, or use last/answer/mean")
                }
                let scale = 1 / Float(picks.count)
                for o in 0..<outer {
                    let d = dst + o * inner
                    for i in 0..<inner { d[i] = 0 }
                    for p in picks {
                        let s = src + (o * P + p) * inner
                        if picks.count == 1 {
                            d.update(from: s, count: inner)
                        } else {
                            for i in 0..<inner { d[i] += s[i] * scale }
                        }
                    }
                }
            }
            start += n
        }
        return ActivationMatrix(rows: range.count, cols: cols, values: out)
    }

    /// Reads an integer /meta column (2-D columns such as tokens come back flattened, row-major).
    public func intColumn(_ name: String, examples range: Range<Int>? = nil) throws -> [Int] {
        let ds = try metaDataset(name)
        guard ds.type != .string && ds.type != .float32 && ds.type != .float64 else {
            throw RuleLensError("/meta/\(name) in \(path) is not an integer column", fix: "read it with stringColumn or as floats")
        }
        let range = range ?? 0..<count
        try checkRange(range)
        let width = try ds.rowElements()
        var out = [Int64](repeating: 0, count: range.count * width)
        try out.withUnsafeMutableBytes { try ds.readRows(start: range.lowerBound, count: range.count, as: .int64, into: $0.baseAddress!) }
        return out.map { Int($0) }
    }

    /// Reads a string /meta column (prompt, target, prediction, rule).
    public func stringColumn(_ name: String, examples range: Range<Int>? = nil) throws -> [String] {
        let ds = try metaDataset(name)
        let range = range ?? 0..<count
        try checkRange(range)
        return try ds.readStrings(start: range.lowerBound, count: range.count)
    }

    private func metaDataset(_ name: String) throws -> HDF5Dataset {
        guard metaColumns.contains(name) else {
            throw RuleLensError("\(path) has no /meta/\(name) column", fix: "use one of: \(metaColumns.joined(separator: ", "))")
        }
        return try file.openDataset("\(ActivationStoreFormat.metaGroup)/\(name)")
    }

    /// A root attribute as text (string attributes as-is, integers in decimal); nil if absent.
    public func attribute(_ name: String) -> String? {
        if let s = try? file.stringAttribute(name) { return s }
        if let i = try? file.intAttribute(name) { return String(i) }
        return nil
    }

    /// Reads any 2-D (or 1-D, as one column) numeric dataset of any HDF5 file as a float matrix:
    /// for `probe --file` on files RuleLens did not write. Errors name the datasets that do exist.
    public static func readMatrix(path: String, dataset: String) throws -> ActivationMatrix {
        let file = try HDF5File.open(path)
        let name = dataset.hasPrefix("/") ? String(dataset.dropFirst()) : dataset
        guard file.isDataset(name) else {
            throw RuleLensError("\(path) has no dataset \(dataset)",
                                fix: "list its datasets with `h5ls -r \(path)` and pass one with --dataset")
        }
        let ds = try file.openDataset(name)
        let shape = try ds.shape()
        guard ds.type != .string, shape.count == 1 || shape.count == 2 else {
            throw RuleLensError("\(dataset) in \(path) has shape \(shape) and type \(ds.type.rawValue); a matrix needs a 1-D or 2-D numeric dataset",
                                fix: "pass a dataset of shape [examples, features]")
        }
        let rows = shape[0], cols = shape.count == 2 ? shape[1] : 1
        let out = FloatBuffer(count: rows * cols)
        try ds.readRows(start: 0, count: rows, as: .float32, into: UnsafeMutableRawPointer(out.ptr))
        return ActivationMatrix(rows: rows, cols: cols, values: out)
    }
}
