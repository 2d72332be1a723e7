import Foundation
import RuleLensNumerics

/// What `ActivationStoreReader.verify` read.
public struct ActivationStoreVerification: Sendable {
    /// Datasets read in full (every chunk inflated).
    public var datasets = 0
    /// Values read across them.
    public var values = 0
    /// Attributes read and, where they hold JSON, parsed.
    public var attributes = 0
    /// Non-finite activation values (reported, not an error: a diverged model dumps them faithfully).
    public var nonFinite = 0
}

extension ActivationStoreReader {
    /// Reads the whole file: every attribute of the root, the groups and the datasets (JSON ones parsed:
    /// `model_config` must be an object with the GPT-2 shape fields, `hooks` a list naming the /acts datasets),
    /// every row of every /acts and /meta dataset (so every chunk is inflated), and checks the row counts agree.
    /// Throws naming the first fault. `progress` is told (datasets done, total).
    public func verify(progress: ((Int, Int) -> Void)? = nil) throws -> ActivationStoreVerification {
        var v = ActivationStoreVerification()
        func fail(_ what: String) -> RuleLensError {
            RuleLensError("\(path) fails verification: \(what)", fix: "regenerate it (rerun `rulelens dump … --force`)")
        }
        func readAttributes(_ object: HDF5Object, _ where_: String) throws {
            // The dimension-scale attributes hold object references: read by following them (below), not as text.
            for name in try object.attributeNames() where !HDF5Dataset.dimensionScaleAttributes.contains(name) {
                do {
                    if let text = try? object.stringAttribute(name) {
                        if ["model_config", "hooks"].contains(name) || text.hasPrefix("{") {
                            guard (try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil else {
                                throw fail("attribute \(name) of \(where_) is not valid JSON")
                            }
                        }
                    } else {
                        _ = try object.intAttribute(name)
                    }
                    v.attributes += 1
                } catch let error as RuleLensError {
                    throw error.problem.contains("fails verification") ? error : fail("attribute \(name) of \(where_) cannot be read (\(error.problem))")
                }
            }
        }
        try readAttributes(file, "/")
        // model_config: the GPT-2 shape, as the dump wrote it.
        guard let config = (try? JSONSerialization.jsonObject(with: Data(modelConfigJSON.utf8))) as? [String: Any] else {
            throw fail("model_config is not a JSON object")
        }
        for key in ["n_layer", "n_head", "n_embd", "n_positions", "vocab_size"] {
            guard let n = config[key] as? NSNumber, n.doubleValue >= 1, n.doubleValue == n.doubleValue.rounded() else {
                throw fail("model_config has no positive integer \(key)")
            }
        }
        let acts = try file.openGroup(ActivationStoreFormat.actsGroup)
        let meta = try file.openGroup(ActivationStoreFormat.metaGroup)
        try readAttributes(acts, "/acts"); try readAttributes(meta, "/meta")
        let actNames = try acts.childNames(), metaNames = try meta.childNames()
        for name in hooks where !actNames.contains(name) { throw fail("hooks names \(name), but /acts has no such dataset") }
        let total = actNames.count + metaNames.count
        var done = 0
        for (group, prefix, names) in [(acts, "/acts/", actNames), (meta, "/meta/", metaNames)] {
            for name in names {
                let ds = try group.openDataset(name)
                try readAttributes(ds, prefix + name)
                do { v.attributes += try ds.dimensionScaleNames().compactMap { $0 }.count } catch let error as RuleLensError {
                    throw fail("the dimension names of \(prefix)\(name) cannot be read (\(error.problem))")
                }
                let shape = try ds.shape()
                guard let rows = shape.first else { throw fail("\(prefix)\(name) is a scalar, not a column") }
                guard rows >= count else { throw fail("\(prefix)\(name) has \(rows) rows, fewer than the \(count) examples") }
                let rowElements = shape.dropFirst().reduce(1, *)
                if ds.type == .string {
                    // In one read, so the column's checksum (of the strings in HDF5's global heap) is checked.
                    v.values += try ds.readStrings(start: 0, count: count).count
                } else {
                    let block = max(1, min(rows, (16 << 20) / max(1, 4 * rowElements)))
                    let buffer = FloatBuffer(count: block * rowElements)
                    var start = 0
                    while start < rows {
                        let n = min(block, rows - start)
                        try ds.readRows(start: start, count: n, as: .float32, into: UnsafeMutableRawPointer(buffer.ptr))
                        if prefix == "/acts/" { for i in 0..<(n * rowElements) where !buffer.ptr[i].isFinite { v.nonFinite += 1 } }
                        v.values += n * rowElements
                        start += n
                    }
                }
                v.datasets += 1
                done += 1
                progress?(done, total)
            }
        }
        return v
    }
}
