import CHDF5
import Foundation
import RuleLensNumerics

/// Something that holds links and attributes: a file (its root group) or a group.
public class HDF5Location: HDF5Object {
    /// The file this location belongs to, for error messages.
    public let path: String

    init(id: hid_t, path: String, closer: @escaping (hid_t) -> herr_t) {
        self.path = path
        super.init(id: id, closer: closer)
    }

    /// True if `name` (a path relative to this location, e.g. "acts/hook_embed") exists.
    public func exists(_ name: String) -> Bool {
        HDF5.locked {
            // H5Lexists needs every intermediate component to exist, so check them in turn.
            var prefix = ""
            for part in name.split(separator: "/") {
                prefix += (prefix.isEmpty ? "" : "/") + part
                if H5Lexists(id, prefix, rl_H5P_DEFAULT()) <= 0 { H5Eclear2(hid_t(0)); return false }
            }
            return true
        }
    }

    /// Names of the links directly under this location, in name order.
    public func childNames() throws -> [String] {
        try HDF5.locked {
            var info = H5G_info_t()
            try HDF5.check(H5Gget_info(id, &info), "list the members of a group in \(path)")
            var names: [String] = []
            for i in 0..<info.nlinks {
                let size = try HDF5.check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, rl_H5P_DEFAULT()),
                                          "read a member name in \(path)")
                var buf = [CChar](repeating: 0, count: Int(size) + 1)
                try HDF5.check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, rl_H5P_DEFAULT()),
                               "read a member name in \(path)")
                names.append(String(cString: buf))
            }
            return names
        }
    }

    /// Creates a group (and any missing parents).
    @discardableResult
    public func createGroup(_ name: String) throws -> HDF5Group {
        try HDF5.locked {
            let lcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_LINK_CREATE()), "create a link property list")
            try HDF5.check(H5Pset_create_intermediate_group(lcpl.id, 1), "configure group creation")
            let gid = try HDF5.check(H5Gcreate2(id, name, lcpl.id, rl_H5P_DEFAULT(), rl_H5P_DEFAULT()),
                                     "create group \(name) in \(path)")
            return HDF5Group(id: gid, path: path)
        }
    }

    /// Opens an existing group.
    public func openGroup(_ name: String) throws -> HDF5Group {
        try HDF5.locked {
            guard exists(name) else {
                throw RuleLensError("\(path) has no group \(name)", fix: "check the file is the kind RuleLens expects here")
            }
            let gid = try HDF5.check(H5Gopen2(id, name, rl_H5P_DEFAULT()), "open group \(name) in \(path)")
            return HDF5Group(id: gid, path: path)
        }
    }

    /// True if `name` exists and is a dataset.
    public func isDataset(_ name: String) -> Bool {
        HDF5.locked {
            guard exists(name) else { return false }
            let oid = H5Oopen(id, name, rl_H5P_DEFAULT())
            guard oid >= 0 else { H5Eclear2(hid_t(0)); return false }
            defer { H5Oclose(oid) }
            return H5Iget_type(oid) == H5I_DATASET
        }
    }

    /// Creates a dataset. `maxDims` entries of nil are unlimited; `chunk` is required when any is;
    /// `gzip` (0–9) adds shuffle + deflate. `cacheBytes` sizes this dataset's chunk cache.
    /// `stringWidth` (for `.string`) stores fixed-length UTF-8 strings of that many bytes, null-padded, instead of
    /// variable-length ones: they compress, and they live in the chunks rather than HDF5's global heap.
    public func createDataset(_ name: String, type: HDF5ElementType, shape: [Int], maxDims: [Int?]? = nil,
                              chunk: [Int]? = nil, gzip: Int? = nil, cacheBytes: Int? = nil,
                              stringWidth: Int? = nil) throws -> HDF5Dataset {
        try HDF5.locked {
            let space = try HDF5Temp.simpleSpace(shape, maxDims: maxDims)
            let fileType = try stringWidth.map { try HDF5Temp.fixedUTF8String(width: $0) } ?? type.fileType()
            let dcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_DATASET_CREATE()), "create a dataset property list")
            if let chunk {
                var c = chunk.map { hsize_t(max(1, $0)) }
                try HDF5.check(H5Pset_chunk(dcpl.id, Int32(c.count), &c), "set chunking \(chunk) for \(name)")
                if let gzip, gzip > 0 {
                    try HDF5.check(H5Pset_shuffle(dcpl.id), "enable the shuffle filter for \(name)")
                    try HDF5.check(H5Pset_deflate(dcpl.id, UInt32(min(gzip, 9))), "enable gzip for \(name)")
                }
            }
            let lcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_LINK_CREATE()), "create a link property list")
            try HDF5.check(H5Pset_create_intermediate_group(lcpl.id, 1), "configure dataset creation")
            let dapl = try HDF5Dataset.accessList(cacheBytes: cacheBytes)
            let did = try HDF5.check(H5Dcreate2(id, name, fileType.id, space.id, lcpl.id, dcpl.id, dapl.id),
                                     "create dataset \(name) in \(path)")
            return HDF5Dataset(id: did, name: name, path: path, type: type)
        }
    }

    /// Opens an existing dataset.
    public func openDataset(_ name: String, cacheBytes: Int? = nil) throws -> HDF5Dataset {
        try HDF5.locked {
            guard isDataset(name) else {
                throw RuleLensError("\(path) has no dataset \(name)",
                                    fix: "list the file's datasets (h5ls -r \(path)) and pass one of them")
            }
            let dapl = try HDF5Dataset.accessList(cacheBytes: cacheBytes)
            let did = try HDF5.check(H5Dopen2(id, name, dapl.id), "open dataset \(name) in \(path)")
            let t = try HDF5Temp.type(H5Dget_type(did), "read the type of \(name)")
            guard let kind = HDF5ElementType.classify(t.id) else {
                H5Dclose(did)
                throw RuleLensError("dataset \(name) in \(path) has a type RuleLens cannot read (not float, integer or string)",
                                    fix: "store it as float32, int32/int64 or UTF-8 strings")
            }
            return HDF5Dataset(id: did, name: name, path: path, type: kind)
        }
    }
}

/// An open HDF5 file. Closed by `close()` or on release.
public final class HDF5File: HDF5Location {
    /// Creates a new file. Fails if it exists unless `overwrite` is true.
    ///
    /// The file never reuses freed space (free-space strategy NONE): after a crash, the chunks that the
    /// last flushed metadata points to cannot have been overwritten by later writes.
    public static func create(_ path: String, overwrite: Bool) throws -> HDF5File {
        try HDF5.locked {
            let fcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_FILE_CREATE()), "create a file property list")
            try HDF5.check(H5Pset_file_space_strategy(fcpl.id, H5F_FSPACE_STRATEGY_NONE, false, 1), "set the file space strategy")
            let flags = overwrite ? rl_H5F_ACC_TRUNC() : rl_H5F_ACC_EXCL()
            let fid = try HDF5.check(H5Fcreate(path, flags, fcpl.id, rl_H5P_DEFAULT()), "create \(path)",
                                     fix: "check the folder exists and is writable, and that no other program has the file open")
            return HDF5File(id: fid, path: path, closer: H5Fclose)
        }
    }

    /// Opens an existing file. Missing, non-HDF5, truncated and corrupt files are clear errors.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
            throw RuleLensError("\(path) does not exist", fix: "check the path (run `rulelens dump` to create an activation file)")
        }
        return try HDF5.locked {
            let flags = writable ? rl_H5F_ACC_RDWR() : rl_H5F_ACC_RDONLY()
            let fid = H5Fopen(path, flags, rl_H5P_DEFAULT())
            if fid < 0 {
                let reason = HDF5.errorStackSummary()
                if reason.contains("unable to lock file") {
                    throw RuleLensError("\(path) is open for writing by another process (a `rulelens dump` still running?)",
                                        fix: "wait for that process to finish, then run again")
                }
                if reason.contains("already open") {
                    throw RuleLensError("\(path) is already open in this process (HDF5: \(reason))",
                                        fix: "close the other reader or writer of this file first")
                }
                throw RuleLensError("\(path) is not a readable HDF5 file: it is truncated, corrupt or not HDF5"
                                    + (reason.isEmpty ? "" : " (HDF5: \(reason))"),
                                    fix: "regenerate it (e.g. rerun `rulelens dump … --force`), or pass the right path")
            }
            return HDF5File(id: fid, path: path, closer: H5Fclose)
        }
    }

    /// Writes everything buffered to disk; after it returns, a crash leaves the file as of this moment.
    public func flush() throws {
        try HDF5.locked { _ = try HDF5.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "flush \(path)") }
    }
}

/// An open HDF5 group.
public final class HDF5Group: HDF5Location {
    init(id: hid_t, path: String) { super.init(id: id, path: path, closer: H5Gclose) }
}
