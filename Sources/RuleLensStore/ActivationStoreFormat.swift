import Foundation
import RuleLensNumerics

/// Names and constants of the RuleLens activation file format (documented in Data/ACTIVATIONS.md).
public enum ActivationStoreFormat {
    /// Value of the root `format` attribute.
    public static let name = "rulelens-activations"
    /// Value of the root `format_version` attribute this code writes (and the newest it reads).
    public static let version = 1
    /// Group of per-example columns.
    public static let metaGroup = "meta"
    /// Group of activation datasets, one per hook site, named exactly as the hook.
    public static let actsGroup = "acts"
    /// Root attribute keys whose values must match for `--resume` to continue a file.
    /// (The shard keys only exist in the per-rank files of a dump under mpirun.)
    public static let identityKeys = ["model_config", "hooks", "positions", "max_length", "n_examples",
                                      "checkpoint_fingerprint", "data_fingerprint", "source_data",
                                      "shard_index", "shard_count", "shard_first_example"]
}

/// One activation dataset: a hook site and the shape each example contributes.
public struct ActivationSiteSpec: Equatable, Sendable {
    /// Hook name (dataset name under /acts).
    public var name: String
    /// Shape of one example's row, e.g. [T, d_model] or [d_model] when one position is kept.
    public var rowShape: [Int]
    /// Axis names of one row, e.g. ["pos", "d_model"]; the stored `dims` attribute prepends "example".
    public var rowDims: [String]

    public init(name: String, rowShape: [Int], rowDims: [String]) {
        precondition(rowShape.count == rowDims.count, "rowShape and rowDims must have the same rank")
        self.name = name; self.rowShape = rowShape; self.rowDims = rowDims
    }

    /// Floats in one example's row.
    public var rowElements: Int { rowShape.reduce(1, *) }
}

/// One /meta column. Numeric: `width` nil for 1-D columns, or the second dimension (e.g. tokens [N, T]), named
/// `widthDim` (default `<name>_width`). Strings: `width` is the fixed byte width (null-padded UTF-8), nil for
/// variable-length strings (what `rulelens dump` writes: netCDF tools read them, fixed-length ones crash `ncdump`).
public struct MetaColumnSpec: Equatable, Sendable {
    public var name: String
    public var type: HDF5ElementType
    public var width: Int?
    /// The dimension name of a numeric column's second axis.
    public var widthDim: String?

    public init(name: String, type: HDF5ElementType, width: Int? = nil, widthDim: String? = nil) {
        self.name = name; self.type = type; self.width = width; self.widthDim = widthDim
    }

    /// Dimension names of the stored dataset ("example", then the width's).
    public var dims: [String] {
        type != .string && width != nil ? [HDF5Dimensions.example, widthDim ?? "\(name)_width"] : [HDF5Dimensions.example]
    }
}

/// The root attributes of an activation file (besides `format`, `format_version`, `complete`, `examples_written`).
public struct ActivationStoreHeader: Equatable, Sendable {
    /// GPTConfig as JSON.
    public var modelConfigJSON: String
    /// Resolved hook names, in forward order.
    public var hooks: [String]
    /// Checkpoint directory the activations come from.
    public var sourceCheckpoint: String
    /// Data file (or task/split description) the examples come from.
    public var sourceData: String
    /// Seed of whatever randomness produced the data (0 when none).
    public var seed: Int
    /// Position mode: "all", "last", "answer" or a decimal index.
    public var positions: String
    /// T: the padded sequence length (tokens and every pos axis).
    public var maxLength: Int
    /// Number of examples the file will hold when complete.
    public var nExamples: Int
    /// Further string attributes (e.g. fingerprints); keys in `ActivationStoreFormat.identityKeys` are checked on resume.
    public var extra: [String: String]

    public init(modelConfigJSON: String, hooks: [String], sourceCheckpoint: String, sourceData: String, seed: Int,
                positions: String, maxLength: Int, nExamples: Int, extra: [String: String] = [:]) {
        self.modelConfigJSON = modelConfigJSON; self.hooks = hooks; self.sourceCheckpoint = sourceCheckpoint
        self.sourceData = sourceData; self.seed = seed; self.positions = positions; self.maxLength = maxLength
        self.nExamples = nExamples; self.extra = extra
    }

    /// The hooks list as the JSON stored in the `hooks` attribute.
    public var hooksJSON: String {
        let data = try! JSONSerialization.data(withJSONObject: hooks, options: [])
        return String(decoding: data, as: UTF8.self)
    }

    /// Every root attribute as text, for writing and for the resume comparison.
    var stringAttributes: [String: String] {
        var a = extra
        a["model_config"] = modelConfigJSON
        a["hooks"] = hooksJSON
        a["source_checkpoint"] = sourceCheckpoint
        a["source_data"] = sourceData
        a["positions"] = positions
        return a
    }
}

/// A 64-bit FNV-1a hash, used to fingerprint checkpoints and data for `--resume` (not for security).
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        value = h
    }

    public mutating func add(_ text: String) {
        var t = text
        t.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    /// Hex digits of the hash.
    public var hex: String { String(value, radix: 16) }
}
