import RuleLensNumerics

/// A matrix that can be read a block of rows at a time, so analyses can stream data larger than memory
/// (an HDF5 dataset read chunk by chunk) through the same code as an in-memory matrix.
public protocol RowChunkSource {
    /// Number of rows (examples).
    var rows: Int { get }
    /// Number of columns (features).
    var cols: Int { get }
    /// Writes rows `range` (row-major, `range.count * cols` floats) into `out`.
    func readRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws
}

/// An in-memory matrix as a row source.
public struct MatrixRowSource: RowChunkSource {
    public let matrix: FloatMatrix
    public init(_ matrix: FloatMatrix) { self.matrix = matrix }
    public var rows: Int { matrix.rows }
    public var cols: Int { matrix.cols }
    public func readRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        out.update(from: matrix.ptr + range.lowerBound * matrix.cols, count: range.count * matrix.cols)
    }
}
