import RuleLensNumerics

/// How the /acts chunks of an activation file are stored: `none`, or HDF5's shuffle + deflate (`gzip`, level 1–9),
/// which every HDF5 reader decodes without plugins. Written on the command line as `none`, `gzip` or `gzip:LEVEL`.
public enum ChunkCompression: Equatable, Sendable, CustomStringConvertible {
    case none
    case gzip(level: Int)

    /// The default of `rulelens dump`: see `Data/ACTIVATIONS.md` (and the dump benchmark) for the measured size and
    /// speed of each choice.
    public static let `default` = ChunkCompression.gzip(level: 1)

    /// Parses `none`, `gzip` (level 1) or `gzip:LEVEL` (1–9).
    public init(parsing text: String) throws {
        let t = text.lowercased()
        if t == "none" { self = .none; return }
        if t == "gzip" { self = .gzip(level: 1); return }
        if t.hasPrefix("gzip:"), let level = Int(t.dropFirst(5)), (1...9).contains(level) { self = .gzip(level: level); return }
        throw RuleLensError("--compression \(text) is not none, gzip or gzip:LEVEL with a level 1–9",
                            fix: "pass --compression none (fastest, largest), gzip (level 1) or e.g. gzip:6")
    }

    /// The deflate level handed to the writer (0 = no filters).
    public var gzipLevel: Int {
        switch self {
        case .none: return 0
        case .gzip(let level): return level
        }
    }

    /// `none` or `gzip:LEVEL`: the form `init(parsing:)` reads.
    public var description: String {
        switch self {
        case .none: return "none"
        case .gzip(let level): return "gzip:\(level)"
        }
    }
}
