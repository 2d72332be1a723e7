import Foundation
import RuleLensNumerics
import RuleLensStore

/// Read access to activation matrices and label columns in an HDF5 file: a RuleLens activation dump
/// (`/acts/<hook>`, `/meta/<column>`, read through the store's `ActivationStoreReader`, which checks the format
/// and completeness) or any other HDF5 file with float datasets (pass the dataset path, e.g. `/X`).
///
/// A site of shape [N, d] is used as is; [N, pos, …] takes one position per example (`PositionSelector`:
/// last, answer, mean or an index, per example's length), and attention patterns [N, head, q_pos, k_pos] take
/// one query position; the remaining axes are flattened. The position axis is named by the dataset's `dims`
/// attribute ("example,pos,d_model", "…,q_pos,k_pos"); a file without `dims` is assumed to have it at axis 1.
public final class ActivationFile {
    public let path: String
    let file: HDF5File
    /// Set for RuleLens activation dumps.
    let store: ActivationStoreReader?

    public init(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuleLensError("activation file \(path) does not exist", fix: "pass the HDF5 file written by `rulelens dump` (--file)")
        }
        self.path = path
        file = try HDF5File.open(path)
        let isDump = file.hasAttribute("format") && (try? file.stringAttribute("format")) == ActivationStoreFormat.name
        store = isDump ? try ActivationStoreReader(path: path) : nil
    }

    /// Hook sites stored under /acts (dataset names), or, for a file without /acts, the root's datasets.
    public func siteNames() throws -> [String] {
        if let store { return store.sites.map(\.name) }
        if file.exists("acts") { return try file.openGroup("acts").childNames() }
        return try file.childNames().filter { file.isDataset($0) }
    }

    /// The label columns under /meta.
    public func labelColumns() throws -> [String] {
        file.exists("meta") ? try file.openGroup("meta").childNames() : []
    }

    /// Expands site names and `*` patterns into stored sites, ordered by layer (`SiteOrder`). A leading "/"
    /// names any dataset in the file directly. Unknown names are errors listing what exists and the closest match.
    public func resolveSites(_ patterns: [String]) throws -> [String] {
        let stored = try siteNames()
        var out: [String] = []
        for pattern in patterns {
            if pattern.hasPrefix("/") {
                guard file.isDataset(pattern) else {
                    throw RuleLensError("\(path) has no dataset \(pattern)", fix: "list its datasets with `h5ls -r \(path)`")
                }
                out.append(pattern); continue
            }
            let matches = stored.filter { SiteOrder.glob(pattern, matches: $0) }
            if matches.isEmpty {
                let close = SiteOrder.closest(to: pattern, in: stored)
                let shown = stored.sorted(by: SiteOrder.precedes).prefix(40).joined(separator: ", ")
                throw RuleLensError("\(path) has no site matching \"\(pattern)\"" + (close.map { " (did you mean \($0)?)" } ?? ""),
                                    fix: "pass one of the stored sites: \(shown)\(stored.count > 40 ? ", …" : "")")
            }
            out.append(contentsOf: matches)
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }.sorted(by: SiteOrder.precedes)
    }

    func dataset(_ site: String) throws -> HDF5Dataset {
        let name = site.hasPrefix("/") ? String(site.dropFirst()) : (file.exists("acts") ? "acts/" + site : site)
        guard file.isDataset(name) else {
            throw RuleLensError("\(path) has no site \(site)", fix: "pass one of: \(try siteNames().joined(separator: ", "))")
        }
        let ds = try file.openDataset(name)
        // Float and integer datasets (int8/uint8 codes, counts) are read as float32; strings are not data.
        guard ds.type != .string else {
            throw RuleLensError("\(site) in \(path) holds strings, not numbers", fix: "point --site at a numeric (float or integer) dataset")
        }
        return ds
    }

    /// Shape of a stored site, including the example axis.
    public func shape(of site: String) throws -> [Int] { try dataset(site).shape() }

    /// Lengths of the examples (`/meta/length`), if stored.
    func lengths() throws -> [Int]? {
        guard file.isDataset("meta/length") else { return nil }
        return try file.openDataset("meta/length").readAllInts()
    }

    /// The [N, features] matrix of `site` at `position`.
    public func matrix(_ site: String, position: PositionSelector = .last) throws -> FloatMatrix {
        let source = try rowSource(site, position: position)
        let m = FloatMatrix(rows: source.rows, cols: source.cols)
        let chunk = max(1, 4096)
        var start = 0
        while start < source.rows {
            let end = min(source.rows, start + chunk)
            try source.readRows(start..<end, into: m.ptr + start * source.cols)
            start = end
        }
        return m
    }

    /// Whether `site` keeps a position axis (a per-position dump, or an [N, pos, …] dataset), so `--position` applies.
    public func hasPositionAxis(_ site: String) throws -> Bool {
        switch try rowSource(site, position: .last) {
        case let s as StoreRowSource: return s.position != nil
        case let s as HDF5RowSource: return s.positionAxis != nil
        default: return true
        }
    }

    /// A streaming row source over `site` at `position` (reads the file a block of examples at a time).
    public func rowSource(_ site: String, position: PositionSelector = .last) throws -> RowChunkSource {
        if let store, !site.hasPrefix("/") {
            let info = try store.site(site)
            let rows = store.count
            guard rows > 0 else { throw RuleLensError("\(path) holds no examples", fix: "dump at least one example") }
            // Learn the width from one example; sites dumped with one position take no selector.
            let selector: PositionSelector? = info.positionAxis == nil ? nil : position
            let probe = try store.readPosition(site: site, selector, examples: 0..<1)
            return StoreRowSource(store: store, site: site, position: selector, rows: rows, cols: probe.cols)
        }
        let ds = try dataset(site)
        let shape = try ds.shape()
        guard shape.count >= 2, shape[0] > 0 else {
            throw RuleLensError("\(site) in \(path) has shape \(shape); an [examples, features…] array is needed",
                                fix: "pass a site with at least one example and one feature")
        }
        if shape.count == 2 { return HDF5RowSource(dataset: ds, shape: shape, positionAxis: nil, position: position, lengths: nil, answers: nil, site: site) }
        var axis: Int? = 1
        if ds.hasAttribute("dims"), let dims = try? ds.stringAttribute("dims") {
            let names = dims.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            axis = names.firstIndex(where: { $0 == "pos" || $0 == "q_pos" }).flatMap { $0 > 0 && $0 < shape.count ? $0 : nil }
        }
        guard let axis else {
            return HDF5RowSource(dataset: ds, shape: shape, positionAxis: nil, position: position, lengths: nil, answers: nil, site: site)
        }
        let lengths = try self.lengths()
        if let lengths, lengths.count != shape[0] {
            throw RuleLensError("/meta/length has \(lengths.count) entries but \(site) has \(shape[0]) examples", fix: "the dump is inconsistent; regenerate it")
        }
        var answers: [Int]? = nil
        if position == .answer {
            guard file.isDataset("meta/answer_pos") else {
                throw RuleLensError("--position answer needs a /meta/answer_pos column, which \(path) lacks", fix: "pass --position last, mean or an index")
            }
            answers = try file.openDataset("meta/answer_pos").readAllInts()
        }
        return HDF5RowSource(dataset: ds, shape: shape, positionAxis: axis, position: position, lengths: lengths, answers: answers, site: site)
    }

    /// A label column as class ids. Integer and string columns are categorical; float columns must hold whole numbers.
    public func labels(_ column: String) throws -> Labels {
        let name = column.hasPrefix("/") ? String(column.dropFirst()) : "meta/" + column
        guard file.isDataset(name) else {
            let columns = (try? labelColumns()) ?? []
            throw RuleLensError("\(path) has no label column \(column)",
                                fix: columns.isEmpty ? "the file has no /meta group; pass a dataset path such as --label /y"
                                                     : "pass one of: \(columns.joined(separator: ", "))")
        }
        let ds = try file.openDataset(name)
        let shape = try ds.shape()
        guard shape.count == 1 else {
            throw RuleLensError("label column \(column) has shape \(shape); a 1-D column is needed", fix: "pass a 1-D /meta column such as rule or rule_id")
        }
        switch ds.type {
        case .string: return Labels(strings: try ds.readStrings())
        case .int32, .int64: return Labels(try ds.readAllInts())
        case .float32, .float64:
            let values = try ds.readAllFloats()
            guard values.allSatisfy({ $0.isFinite && $0 == $0.rounded() }) else {
                throw RuleLensError("label column \(column) holds non-integer or NaN values", fix: "pass a categorical column (strings or integers)")
            }
            return Labels(values.map { Int($0) })
        }
    }

    /// A column as strings (strings as stored, numbers formatted, 2-D integer rows such as tokens joined by ",").
    public func stringColumn(_ column: String) throws -> [String] {
        let name = column.hasPrefix("/") ? String(column.dropFirst()) : "meta/" + column
        guard file.isDataset(name) else {
            throw RuleLensError("\(path) has no column \(column)", fix: "pass one of: \(((try? labelColumns()) ?? []).joined(separator: ", "))")
        }
        let ds = try file.openDataset(name)
        if ds.type == .string { return try ds.readStrings() }
        let shape = try ds.shape(), width = shape.dropFirst().reduce(1, *)
        if ds.type == .float32 || ds.type == .float64 {
            let v = try ds.readAllFloats()
            return (0..<shape[0]).map { i in v[(i * width)..<((i + 1) * width)].map { String($0) }.joined(separator: ",") }
        }
        let v = try ds.readAllInts()
        return (0..<shape[0]).map { i in v[(i * width)..<((i + 1) * width)].map(String.init).joined(separator: ",") }
    }
}

/// Rows of an HDF5 site, one feature vector per example, read a block of examples at a time.
struct HDF5RowSource: RowChunkSource {
    let dataset: HDF5Dataset
    let shape: [Int]
    let positionAxis: Int?
    let position: PositionSelector
    let lengths: [Int]?
    let answers: [Int]?
    let site: String

    var rows: Int { shape[0] }
    /// Features: everything except the example axis and (if any) the position axis.
    var cols: Int {
        var c = 1
        for (a, s) in shape.enumerated() where a != 0 && a != positionAxis { c *= s }
        return c
    }

    func readRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let rowElements = shape.dropFirst().reduce(1, *)
        guard let axis = positionAxis else {
            try dataset.readRows(start: range.lowerBound, count: range.count, as: .float32, into: out)
            return
        }
        let raw = FloatBuffer(count: range.count * rowElements)
        try dataset.readRows(start: range.lowerBound, count: range.count, as: .float32, into: raw.ptr)
        // Per example the stored block is [outer…, pos, inner…] with outer = axes 1..<axis.
        let positions = shape[axis]
        let outer = shape[1..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let features = outer * inner
        for (r, example) in range.enumerated() {
            let src = raw.ptr + r * rowElements, dst = out + r * features
            let real = min(max(lengths?[example] ?? positions, 1), positions)
            switch position {
            case .last, .index, .answer:
                // Same conventions as the store's reader: last = length − 1, negative K counts back from length.
                let p: Int
                switch position {
                case .index(let k): p = k >= 0 ? k : real + k
                case .answer: p = answers![example]
                default: p = real - 1
                }
                guard p >= 0, p < real else {
                    throw RuleLensError("position \(p) is outside example \(example) of \(site) (length \(real))",
                                        fix: "choose a position below every example's length, or use last/mean")
                }
                for o in 0..<outer { (dst + o * inner).update(from: src + (o * positions + p) * inner, count: inner) }
            case .mean:
                for o in 0..<outer {
                    for i in 0..<inner {
                        var s: Float = 0
                        for p in 0..<real { s += src[(o * positions + p) * inner + i] }
                        dst[o * inner + i] = s / Float(real)
                    }
                }
            }
        }
    }
}

/// Rows of a site of a RuleLens dump, read through the store's reader a block of examples at a time.
struct StoreRowSource: RowChunkSource {
    let store: ActivationStoreReader
    let site: String
    let position: PositionSelector?
    let rows: Int
    let cols: Int

    func readRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let m = try store.readPosition(site: site, position, examples: range)
        out.update(from: m.values.ptr, count: range.count * cols)
    }
}

/// Orders hook sites by layer, and within a layer in forward order (attention sites, then FFN sites), so a
/// sweep's table puts each layer's attention and FFN rows side by side.
public enum SiteOrder {
    /// The layer of `blocks.{l}.…` (−1 before the blocks, Int.max after them).
    public static func layer(of site: String) -> Int {
        let parts = site.split(separator: ".")
        if parts.count >= 2, parts[0] == "blocks", let l = Int(parts[1]) { return l }
        if site.hasPrefix("hook_embed") || site.hasPrefix("hook_pos_embed") { return -1 }
        return Int.max
    }

    /// Forward-order rank of a site within its layer.
    static func rank(_ site: String) -> Int {
        let order = ["hook_embed", "hook_pos_embed", "hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
                     "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out",
                     "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out",
                     "hook_resid_post", "ln_final.hook_normalized", "unembed.hook_out"]
        for (i, suffix) in order.enumerated() where site.hasSuffix(suffix) { return i }
        return order.count
    }

    /// Whether `a` comes before `b`: by layer, then forward order, then name.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        (layer(of: a), rank(a), a) < (layer(of: b), rank(b), b)
    }

    /// "attention", "ffn" or "residual/other" — the component a site belongs to.
    public static func component(of site: String) -> String {
        if site.contains(".attn.") || site.hasSuffix("hook_attn_out") || site.contains("ln1.") { return "attention" }
        if site.contains(".mlp.") || site.hasSuffix("hook_mlp_out") || site.contains("ln2.") { return "ffn" }
        return "residual"
    }

    /// Shell-style match where `*` matches any run of characters (including dots).
    public static func glob(_ pattern: String, matches name: String) -> Bool {
        let p = Array(pattern), s = Array(name)
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && p[pi] != "*" && p[pi] == s[si] { pi += 1; si += 1 }
            else if pi < p.count && p[pi] == "*" { star = pi; mark = si; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; si = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// The stored name with the smallest edit distance to `name`, if any is reasonably close.
    public static func closest(to name: String, in names: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var prev = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var cur = [i] + [Int](repeating: 0, count: b.count)
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return prev[b.count]
        }
        let target = Array(name)
        let best = names.map { ($0, distance(target, Array($0))) }.min { $0.1 < $1.1 }
        guard let (candidate, d) = best, d <= max(3, name.count / 2) else { return nil }
        return candidate
    }
}
