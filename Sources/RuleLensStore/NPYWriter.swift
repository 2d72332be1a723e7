import Foundation
import RuleLensNumerics

/// Streams a float32 NumPy `.npy` file of a known shape: header first, then rows appended in order.
/// Used to export exactly what a dump computed in-process, for bit-for-bit checks against the HDF5 file.
public final class NPYWriter {
    public let path: String
    private let handle: FileHandle
    private let expected: Int
    private var written = 0

    /// Creates `path` (replacing it) for an array of `shape`.
    public init(path: String, shape: [Int]) throws {
        self.path = path
        expected = shape.reduce(1, *)
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64 and ending in \n.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = UInt16(header.utf8.count)
        bytes += [UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)),
              let h = FileHandle(forWritingAtPath: path) else {
            throw RuleLensError("cannot create \(path)", fix: "check the folder exists and is writable")
        }
        handle = h
        handle.seekToEndOfFile()
    }

    /// Appends `count` float32 values (little-endian machines only, which is every machine RuleLens targets).
    public func append(_ values: UnsafePointer<Float>, count: Int) {
        handle.write(Data(bytes: values, count: count * 4))
        written += count
    }

    /// Closes the file; throws if fewer or more values were written than the shape holds.
    public func close() throws {
        try handle.close()
        guard written == expected else {
            throw RuleLensError("\(path) got \(written) values for a shape of \(expected)", fix: "report this as a RuleLens bug")
        }
    }
}
