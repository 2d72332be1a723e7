import CDeflate
import CHDF5
import Foundation
import RuleLensNumerics

/// HDF5's shuffle + deflate filters, done outside HDF5 so chunks compress on every core.
///
/// HDF5 is serialised behind one lock, and its filter pipeline runs inside that lock: a dump of many sites would
/// compress on one core. Here each chunk is byte-shuffled (HDF5's shuffle: byte k of every element together) and
/// deflated into the zlib format (what HDF5's deflate filter writes and reads) by libdeflate — 2–3× faster than
/// zlib's `compress2` at the same level, with a slightly smaller output — in parallel; the finished chunks are
/// written with `H5Dwrite_chunk`. Any HDF5 reader decodes them with the standard filters.
enum ChunkCodec {
    /// Shuffles `bytes` bytes of 4-byte elements from `src` into `dst`.
    static func shuffle4(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<UInt8>, bytes: Int) {
        let n = bytes / 4
        let d0 = dst, d1 = dst + n, d2 = dst + 2 * n, d3 = dst + 3 * n
        for i in 0..<n {
            let s = src + 4 * i
            d0[i] = s[0]; d1[i] = s[1]; d2[i] = s[2]; d3[i] = s[3]
        }
        // (HDF5 copies trailing bytes of a partial element unchanged; chunks of float32 have none.)
    }

    /// Shuffles and deflates one chunk at `level` (1–9, libdeflate's scale: 1 fastest); returns the compressed bytes.
    static func encode(_ chunk: UnsafeRawPointer, bytes: Int, level: Int) throws -> [UInt8] {
        let shuffled = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, bytes))
        defer { shuffled.deallocate() }
        shuffle4(chunk.assumingMemoryBound(to: UInt8.self), shuffled, bytes: bytes)
        guard let compressor = libdeflate_alloc_compressor(Int32(min(max(level, 1), 9))) else {
            throw RuleLensError("libdeflate could not allocate a compressor (out of memory?)", fix: "retry with --compression none, or free memory")
        }
        defer { libdeflate_free_compressor(compressor) }
        let bound = libdeflate_zlib_compress_bound(compressor, bytes)
        var written = 0
        let out = [UInt8](unsafeUninitializedCapacity: bound) { buf, count in
            written = libdeflate_zlib_compress(compressor, shuffled, bytes, buf.baseAddress, bound)
            count = written
        }
        guard written > 0 else {
            throw RuleLensError("libdeflate could not compress a chunk of \(bytes) bytes", fix: "retry with --compression none, and report this")
        }
        return out
    }
}

extension HDF5Dataset {
    /// Writes one already-filtered chunk (`count` bytes; for a dataset without filters, the raw chunk) whose first
    /// element is at row `row` (other coordinates 0).
    func writeRawChunk(row: Int, rank: Int, _ bytes: UnsafeRawPointer, count: Int) throws {
        try HDF5.locked {
            var offset = [hsize_t](repeating: 0, count: rank)
            offset[0] = hsize_t(row)
            _ = try HDF5.check(H5Dwrite_chunk(id, rl_H5P_DEFAULT(), 0, &offset, count, bytes),
                               "write a chunk at row \(row) of \(name) in \(path)")
        }
    }
}
