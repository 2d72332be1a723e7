import CHDF5
import Foundation
import RuleLensNumerics

/// An open HDF5 dataset. Rows are slices along the first dimension; reads and writes are hyperslabs of whole rows.
public final class HDF5Dataset: HDF5Object {
    /// Path of the dataset inside its file.
    public let name: String
    /// The file, for error messages.
    public let path: String
    /// Stored element kind.
    public let type: HDF5ElementType

    init(id: hid_t, name: String, path: String, type: HDF5ElementType) {
        self.name = name; self.path = path; self.type = type
        super.init(id: id, closer: H5Dclose)
    }

    /// Access property list with a chunk cache of `cacheBytes` (nil: HDF5's default of 1 MiB).
    static func accessList(cacheBytes: Int?) throws -> HDF5Temp {
        let dapl = try HDF5Temp.plist(H5Pcreate(rl_H5P_DATASET_ACCESS()), "create a dataset access list")
        if let cacheBytes {
            // w0 = 1: fully written chunks are evicted first, partially written ones stay (no re-read, no re-compress).
            try HDF5.check(H5Pset_chunk_cache(dapl.id, 521, max(cacheBytes, 1 << 20), 1.0), "size the chunk cache")
        }
        return dapl
    }

    /// Current shape.
    public func shape() throws -> [Int] {
        try HDF5.locked {
            let space = try HDF5Temp.space(H5Dget_space(id), "read the shape of \(name) in \(path)")
            let rank = try HDF5.check(H5Sget_simple_extent_ndims(space.id), "read the rank of \(name) in \(path)")
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            try HDF5.check(H5Sget_simple_extent_dims(space.id, &dims, nil), "read the shape of \(name) in \(path)")
            return dims.map { Int($0) }
        }
    }

    /// Changes the number of rows (first dimension); the dataset must be chunked with an unlimited first dimension.
    public func resize(rows: Int) throws {
        try HDF5.locked {
            var dims = try shape().map { hsize_t($0) }
            dims[0] = hsize_t(rows)
            try HDF5.check(H5Dset_extent(id, &dims), "resize \(name) in \(path) to \(rows) rows")
        }
    }

    /// Selects rows `start..<start+count` of the file space and a matching memory space.
    private func rowSpaces(start: Int, count: Int) throws -> (file: HDF5Temp, memory: HDF5Temp) {
        let dims = try shape()
        guard !dims.isEmpty, start >= 0, count >= 0, start + count <= dims[0] else {
            throw RuleLensError("rows \(start)..<\(start + count) are outside \(name) in \(path) (shape \(dims))",
                                fix: "ask for rows within 0..<\(dims.first ?? 0)")
        }
        let fileSpace = try HDF5Temp.space(H5Dget_space(id), "select rows of \(name)")
        var offset = [hsize_t](repeating: 0, count: dims.count)
        var extent = dims.map { hsize_t($0) }
        offset[0] = hsize_t(start); extent[0] = hsize_t(count)
        try HDF5.check(H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, &offset, nil, &extent, nil), "select rows of \(name)")
        let memory = try HDF5Temp.simpleSpace(extent.map { Int($0) })
        return (fileSpace, memory)
    }

    /// Bytes the dataset occupies in the file (after compression).
    public func storageBytes() -> Int { HDF5.locked { Int(H5Dget_storage_size(id)) } }

    /// Elements in one row.
    public func rowElements() throws -> Int { try shape().dropFirst().reduce(1, *) }

    /// Writes `count` rows from `values` (row-major, numeric types only) at row `start`.
    public func writeRows(start: Int, count: Int, _ values: UnsafeRawPointer) throws {
        guard count > 0 else { return }
        try HDF5.locked {
            precondition(type != .string, "use writeStrings for string datasets")
            let (file, memory) = try rowSpaces(start: start, count: count)
            let memType = try type.memoryType()
            try HDF5.check(H5Dwrite(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), values),
                           "write rows \(start)..<\(start + count) of \(name) in \(path)")
        }
    }

    /// Appends rows at the end (grows the dataset first).
    public func appendRows(count: Int, _ values: UnsafeRawPointer) throws {
        guard count > 0 else { return }
        try HDF5.locked {
            let n = try shape()[0]
            try resize(rows: n + count)
            try writeRows(start: n, count: count, values)
        }
    }

    /// Reads rows `start..<start+count` into `out` (room for count × rowElements values of the dataset's numeric type;
    /// `as` converts, e.g. read int64 as int32).
    public func readRows(start: Int, count: Int, as kind: HDF5ElementType? = nil, into out: UnsafeMutableRawPointer) throws {
        guard count > 0 else { return }
        try HDF5.locked {
            let kind = kind ?? type
            guard kind != .string && type != .string else {
                throw RuleLensError("\(name) in \(path) holds strings, not numbers", fix: "read it as a string column, or check the file is not damaged")
            }
            let (file, memory) = try rowSpaces(start: start, count: count)
            let memType = try kind.memoryType()
            try HDF5.check(H5Dread(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), out),
                           "read rows \(start)..<\(start + count) of \(name) in \(path)",
                           fix: "the file is corrupt or truncated; regenerate it (rerun `rulelens dump … --force`)")
        }
    }

    /// Reads every value as Float.
    public func readAllFloats() throws -> [Float] {
        let dims = try shape()
        let total = dims.reduce(1, *)
        var out = [Float](repeating: 0, count: total)
        if total > 0, let n = dims.first {
            try out.withUnsafeMutableBytes { try readRows(start: 0, count: n, as: .float32, into: $0.baseAddress!) }
        }
        return out
    }

    /// Reads every value as Int (integer datasets, any width).
    public func readAllInts() throws -> [Int] {
        let dims = try shape()
        let total = dims.reduce(1, *)
        var out = [Int64](repeating: 0, count: total)
        if total > 0, let n = dims.first {
            try out.withUnsafeMutableBytes { try readRows(start: 0, count: n, as: .int64, into: $0.baseAddress!) }
        }
        return out.map { Int($0) }
    }

    /// Writes strings (a 1-D string dataset) at row `start`.
    public func writeStrings(start: Int, _ strings: [String]) throws {
        guard !strings.isEmpty else { return }
        try HDF5.locked {
            precondition(type == .string, "writeStrings needs a string dataset")
            let (file, memory) = try rowSpaces(start: start, count: strings.count)
            let stored = try HDF5Temp.type(H5Dget_type(id), "read the type of \(name)")
            if H5Tis_variable_str(stored.id) <= 0 {
                // Fixed-length: pack into null-padded cells of the stored width; never truncate silently.
                let width = H5Tget_size(stored.id)
                var cells = [UInt8](repeating: 0, count: strings.count * width)
                for (i, text) in strings.enumerated() {
                    let bytes = Array(text.utf8)
                    guard bytes.count <= width else {
                        throw RuleLensError("the string \"\(text.prefix(40))\" is \(bytes.count) bytes, wider than \(name)'s \(width)",
                                            fix: "report this as a RuleLens bug (column widths come from the data)")
                    }
                    cells.replaceSubrange((i * width)..<(i * width + bytes.count), with: bytes)
                }
                let memType = try HDF5Temp.fixedUTF8String(width: width)
                try HDF5.check(H5Dwrite(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), cells),
                               "write strings to \(name) in \(path)")
                return
            }
            let memType = try HDF5ElementType.string.memoryType()
            // HDF5 copies the bytes during H5Dwrite, so the C strings only need to live for the call.
            let cStrings = strings.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            var pointers = cStrings.map { UnsafePointer<CChar>($0) }
            try HDF5.check(H5Dwrite(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), &pointers),
                           "write strings to \(name) in \(path)")
        }
    }

    /// Appends strings at the end.
    public func appendStrings(_ strings: [String]) throws {
        guard !strings.isEmpty else { return }
        try HDF5.locked {
            let n = try shape()[0]
            try resize(rows: n + strings.count)
            try writeStrings(start: n, strings)
        }
    }

    /// Attribute of a string column: `"ROWS:HEX"`, the FNV-1a of its first ROWS strings (`stringChecksum`). Variable-
    /// length strings live in HDF5's global heap, which no checksum covers: a damaged heap byte would otherwise read as
    /// a silently different string (a different probe label).
    public static let stringChecksumAttribute = "utf8_fnv1a"

    /// FNV-1a over each string's UTF-8 bytes followed by 0xFF (a byte UTF-8 never holds, so boundaries count).
    public static func stringChecksum(_ strings: some Sequence<String>, into fingerprint: inout Fingerprint) {
        var separator: UInt8 = 0xFF
        for s in strings {
            fingerprint.add(s)
            withUnsafeBytes(of: &separator) { fingerprint.add($0) }
        }
    }

    /// Reads strings `start..<start+count` (variable- or fixed-length, UTF-8 or ASCII). A read of exactly the rows
    /// `stringChecksumAttribute` covers is checked against it.
    public func readStrings(start: Int = 0, count: Int? = nil) throws -> [String] {
        let strings = try readStringsUnchecked(start: start, count: count)
        guard start == 0, hasAttribute(Self.stringChecksumAttribute) else { return strings }
        let recorded = try stringAttribute(Self.stringChecksumAttribute).split(separator: ":")
        guard recorded.count == 2, let rows = Int(recorded[0]), rows == strings.count else { return strings }
        var fingerprint = Fingerprint()
        Self.stringChecksum(strings, into: &fingerprint)
        guard fingerprint.hex == recorded[1] else {
            throw RuleLensError("the strings of \(name) in \(path) do not match the checksum recorded when they were written: the file is damaged",
                                fix: "regenerate it (rerun `rulelens dump … --force`)")
        }
        return strings
    }

    private func readStringsUnchecked(start: Int, count: Int?) throws -> [String] {
        try HDF5.locked {
            guard type == .string else {
                throw RuleLensError("\(name) in \(path) holds numbers, not strings", fix: "read it as a numeric column")
            }
            let n = try count ?? ((shape().first ?? 0) - start)
            guard n > 0 else { return [] }
            guard try shape().count == 1 else {
                throw RuleLensError("\(name) in \(path) is not a 1-D string column", fix: "the file is damaged or was not written by RuleLens; regenerate it")
            }
            let (file, memory) = try rowSpaces(start: start, count: n)
            let stored = try HDF5Temp.type(H5Dget_type(id), "read the type of \(name)")
            if H5Tis_variable_str(stored.id) > 0 {
                let memType = try HDF5ElementType.string.memoryType()
                var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
                try HDF5.check(H5Dread(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), &pointers),
                               "read strings from \(name) in \(path)",
                               fix: "the file is corrupt or truncated; regenerate it (rerun `rulelens dump … --force`)")
                defer { pointers.forEach { if let p = $0 { H5free_memory(p) } } }
                return pointers.map { $0.map { String(cString: $0) } ?? "" }
            }
            // Fixed-length strings: read the stored bytes as they are (the file's own type, so h5py's ASCII `S`
            // columns need no ASCII → UTF-8 conversion, which HDF5 refuses), then cut the padding.
            let width = H5Tget_size(stored.id)
            guard width > 0, width <= 1 << 20 else {
                throw RuleLensError("\(name) in \(path) has a string width of \(width) bytes", fix: "the file is damaged or unusual; store the column as variable-length or fixed-length strings of a sane width")
            }
            let memType = try HDF5Temp.type(H5Tcopy(stored.id), "copy the string type of \(name)")
            let spacePadded = H5Tget_strpad(stored.id) == H5T_STR_SPACEPAD
            var bytes = [CChar](repeating: 0, count: n * width)
            try HDF5.check(H5Dread(id, memType.id, memory.id, file.id, rl_H5P_DEFAULT(), &bytes),
                           "read strings from \(name) in \(path)",
                           fix: "the file is corrupt or truncated; regenerate it")
            return (0..<n).map { i in
                var slice = bytes[(i * width)..<((i + 1) * width)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                if spacePadded { while slice.last == 0x20 { slice.removeLast() } }
                return String(decoding: slice, as: UTF8.self)
            }
        }
    }
}
