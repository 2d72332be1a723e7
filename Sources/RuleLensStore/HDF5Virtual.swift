import CHDF5
import Foundation
import RuleLensNumerics

/// One source of a virtual dataset: rows `0..<rows` of dataset `dataset` in file `file`.
public struct HDF5VirtualSource: Sendable {
    /// The source file's name as stored: relative names are resolved against the folder of the file holding the
    /// virtual dataset (HDF5 ≥ 1.10.2), so a folder of shards and their joined file can move as one.
    public var file: String
    public var dataset: String
    public var rows: Int
    public init(file: String, dataset: String, rows: Int) { self.file = file; self.dataset = dataset; self.rows = rows }
}

extension HDF5Object {
    /// Names of this object's attributes, in name order.
    public func attributeNames() throws -> [String] {
        try HDF5.locked {
            var info = H5O_info_t()
            try HDF5.check(H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "count attributes")
            var names: [String] = []
            for i in 0..<info.num_attrs {
                let size = try HDF5.check(H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, rl_H5P_DEFAULT()),
                                          "read an attribute name")
                var buf = [CChar](repeating: 0, count: Int(size) + 1)
                try HDF5.check(H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, rl_H5P_DEFAULT()),
                               "read an attribute name")
                names.append(String(cString: buf))
            }
            return names
        }
    }

    /// Copies every scalar string and integer attribute of `source` onto this object (except `skipping`);
    /// throws naming any attribute of another kind.
    public func copyAttributes(from source: HDF5Object, skipping: Set<String> = []) throws {
        for name in try source.attributeNames() where !skipping.contains(name) {
            if let text = try? source.stringAttribute(name) {
                try setAttribute(name, text)
            } else if let value = try? source.intAttribute(name) {
                try setAttribute(name, value)
            } else {
                throw RuleLensError("attribute \"\(name)\" is neither a string nor an integer", fix: "use files written by RuleLens")
            }
        }
    }
}

extension HDF5Location {
    /// Creates a virtual dataset of shape [Σ rows] + `rowShape` whose rows are the sources' rows, stacked in order
    /// (H5Pset_virtual). `like` gives the element type (copied exactly, fixed-length strings included).
    /// Rows of a source that cannot be opened read as zeros (the fill value).
    public func createVirtualDataset(_ name: String, like: HDF5Dataset, rowShape: [Int],
                                     sources: [HDF5VirtualSource]) throws -> HDF5Dataset {
        try HDF5.locked {
            let total = sources.reduce(0) { $0 + $1.rows }
            let type = try HDF5Temp.type(H5Dget_type(like.id), "read the type of \(like.name)")
            let virtualSpace = try HDF5Temp.simpleSpace([total] + rowShape)
            let dcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_DATASET_CREATE()), "create a dataset property list")
            // Fill value zero (numbers 0, strings empty), as an unwritten row of an ordinary RuleLens dataset.
            var zero = [UInt8](repeating: 0, count: max(16, H5Tget_size(type.id)))
            try HDF5.check(H5Pset_fill_value(dcpl.id, type.id, &zero), "set the fill value of \(name)")
            var offset = 0
            for source in sources where source.rows > 0 {
                var start = [hsize_t](repeating: 0, count: rowShape.count + 1)
                start[0] = hsize_t(offset)
                var count = [hsize_t(source.rows)] + rowShape.map { hsize_t($0) }
                try HDF5.check(H5Sselect_hyperslab(virtualSpace.id, H5S_SELECT_SET, &start, nil, &count, nil),
                               "select rows \(offset)..<\(offset + source.rows) of \(name)")
                let sourceSpace = try HDF5Temp.simpleSpace([source.rows] + rowShape)
                // '%' in a source name would be read as a printf pattern: escape it.
                let file = source.file.replacingOccurrences(of: "%", with: "%%")
                let dataset = source.dataset.replacingOccurrences(of: "%", with: "%%")
                try HDF5.check(H5Pset_virtual(dcpl.id, virtualSpace.id, file, dataset, sourceSpace.id),
                               "map \(source.file):\(source.dataset) into \(name)")
                offset += source.rows
            }
            _ = H5Sselect_all(virtualSpace.id)
            let lcpl = try HDF5Temp.plist(H5Pcreate(rl_H5P_LINK_CREATE()), "create a link property list")
            try HDF5.check(H5Pset_create_intermediate_group(lcpl.id, 1), "configure dataset creation")
            let did = try HDF5.check(H5Dcreate2(id, name, type.id, virtualSpace.id, lcpl.id, dcpl.id, rl_H5P_DEFAULT()),
                                     "create virtual dataset \(name) in \(path)")
            return HDF5Dataset(id: did, name: name, path: path, type: like.type)
        }
    }
}
