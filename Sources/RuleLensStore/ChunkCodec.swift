import CHDF5
import Foundation
import RuleLensNumerics

/// HDF5's shuffle + deflate filters, done outside HDF5 so chunks compress on every core.
///
/// HDF5 is serialised behind one lock, and its filter pipeline runs inside that lock: a dump of many sites would
/// compress on one core. Here each chunk is byte-shuffled (HDF5's shuffle: byte k of every element together) and
/// deflated with zlib's `compress2` (exactly what HDF5's deflate filter calls), in parallel; the finished chunks are
/// written with `H5Dwrite_chunk`. Any HDF5 reader decodes them with the standard filters.
enum ChunkCodec {
    /// Shuffles `bytes` bytes of 4-byte elements from `src` into `dst`.
    static func shuffle4(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<UInt8>, bytes: Int) {
        let n = bytes / 4
        for k in 0..<4 {
            let out = dst + k * n
            var s = src + k
            for i in 0..<n { out[i] = s.pointee; s += 4 }
        }
        // (HDF5 copies trailing bytes of a partial element unchanged; chunks of float32 have none.)
    }

    /// Shuffles and deflates one chunk; returns the compressed bytes.
    static func encode(_ chunk: UnsafeRawPointer, bytes: Int, level: Int) throws -> [UInt8] {
        let shuffled = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, bytes))
        defer { shuffled.deallocate() }
        shuffle4(chunk.assumingMemoryBound(to: UInt8.self), shuffled, bytes: bytes)
        var bound = compressBound(uLong(bytes))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let status = out.withUnsafeMutableBufferPointer { buf in
            compress2(buf.baseAddress, &bound, shuffled, uLong(bytes), Int32(level))
        }
        guard status == Z_OK else {
            throw RuleLensError("zlib could not compress a chunk (status \(status))", fix: "retry with --gzip 0, and report this")
        }
        out.removeLast(out.count - Int(bound))
        return out
    }
}

extension HDF5Dataset {
    /// Writes one already-filtered chunk whose first element is at row `row` (other coordinates 0).
    func writeRawChunk(row: Int, rank: Int, _ bytes: [UInt8]) throws {
        try HDF5.locked {
            var offset = [hsize_t](repeating: 0, count: rank)
            offset[0] = hsize_t(row)
            try bytes.withUnsafeBytes { buf in
                _ = try HDF5.check(H5Dwrite_chunk(id, rl_H5P_DEFAULT(), 0, &offset, buf.count, buf.baseAddress),
                                   "write a compressed chunk at row \(row) of \(name) in \(path)")
            }
        }
    }
}
