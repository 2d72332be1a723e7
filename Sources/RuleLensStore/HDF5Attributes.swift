import CHDF5
import Foundation
import RuleLensNumerics

/// Scalar attributes on files, groups and datasets: UTF-8 strings and 64-bit integers (and reading doubles).
extension HDF5Object {
    /// True if the attribute exists.
    public func hasAttribute(_ name: String) -> Bool {
        HDF5.locked {
            let r = H5Aexists(id, name)
            if r < 0 { H5Eclear2(hid_t(0)) }
            return r > 0
        }
    }

    /// Creates or replaces a scalar attribute of `type`, writing `value` (pointer to the in-memory value).
    private func replaceAttribute(_ name: String, type: HDF5ElementType, _ value: UnsafeRawPointer) throws {
        try HDF5.locked {
            if H5Aexists(id, name) > 0 {
                try HDF5.check(H5Adelete(id, name), "replace attribute \(name)")
            }
            let space = try HDF5Temp.space(H5Screate(H5S_SCALAR), "create a scalar dataspace")
            let fileType = try type.fileType()
            let aid = try HDF5.check(H5Acreate2(id, name, fileType.id, space.id, rl_H5P_DEFAULT(), rl_H5P_DEFAULT()),
                                     "create attribute \(name)")
            defer { H5Aclose(aid) }
            let memType = try type.memoryType()
            try HDF5.check(H5Awrite(aid, memType.id, value), "write attribute \(name)")
        }
    }

    /// Sets a variable-length UTF-8 string attribute (h5py reads it as `str`).
    public func setAttribute(_ name: String, _ value: String) throws {
        try value.withCString { cs in
            var pointer: UnsafePointer<CChar>? = cs
            try replaceAttribute(name, type: .string, &pointer)
        }
    }

    /// Sets a 64-bit integer attribute.
    public func setAttribute(_ name: String, _ value: Int) throws {
        var v = Int64(value)
        try replaceAttribute(name, type: .int64, &v)
    }

    /// Opens attribute `name`, or throws naming what is missing.
    private func withAttribute<T>(_ name: String, _ body: (hid_t) throws -> T) throws -> T {
        try HDF5.locked {
            guard H5Aexists(id, name) > 0 else {
                H5Eclear2(hid_t(0))
                throw RuleLensError("attribute \"\(name)\" is missing", fix: "use a file written by RuleLens")
            }
            let aid = try HDF5.check(H5Aopen(id, name, rl_H5P_DEFAULT()), "open attribute \(name)")
            defer { H5Aclose(aid) }
            // Reads below fill one value: an attribute holding more (a damaged or foreign file) must not overflow it.
            let space = try HDF5Temp.space(H5Aget_space(aid), "read the shape of attribute \(name)")
            guard H5Sget_simple_extent_npoints(space.id) == 1 else {
                throw RuleLensError("attribute \"\(name)\" holds \(H5Sget_simple_extent_npoints(space.id)) values, not one",
                                    fix: "the file is damaged or was not written by RuleLens; regenerate it")
            }
            return try body(aid)
        }
    }

    /// Reads a string attribute (variable- or fixed-length).
    public func stringAttribute(_ name: String) throws -> String {
        try withAttribute(name) { aid in
            let stored = try HDF5Temp.type(H5Aget_type(aid), "read the type of attribute \(name)")
            guard H5Tget_class(stored.id) == H5T_STRING else {
                throw RuleLensError("attribute \"\(name)\" is not a string", fix: "use a file written by RuleLens")
            }
            if H5Tis_variable_str(stored.id) > 0 {
                let memType = try HDF5ElementType.string.memoryType()
                var pointer: UnsafeMutablePointer<CChar>? = nil
                try HDF5.check(H5Aread(aid, memType.id, &pointer), "read attribute \(name)")
                defer { if let pointer { H5free_memory(pointer) } }
                return pointer.map { String(cString: $0) } ?? ""
            }
            let width = H5Tget_size(stored.id)
            let memType = try HDF5Temp.fixedUTF8String(width: width)
            var bytes = [UInt8](repeating: 0, count: width + 1)
            try HDF5.check(H5Aread(aid, memType.id, &bytes), "read attribute \(name)")
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Reads an integer attribute (any integer width).
    public func intAttribute(_ name: String) throws -> Int {
        try withAttribute(name) { aid in
            let stored = try HDF5Temp.type(H5Aget_type(aid), "read the type of attribute \(name)")
            guard H5Tget_class(stored.id) == H5T_INTEGER else {
                throw RuleLensError("attribute \"\(name)\" is not an integer", fix: "use a file written by RuleLens")
            }
            var v: Int64 = 0
            try HDF5.check(H5Aread(aid, rl_H5T_NATIVE_INT64(), &v), "read attribute \(name)")
            return Int(v)
        }
    }
}
