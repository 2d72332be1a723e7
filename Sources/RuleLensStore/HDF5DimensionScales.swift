import CHDF5
import Foundation
import RuleLensNumerics

/// HDF5 dimension scales (the HDF5 high-level library's H5DS, the convention netCDF-4 stores its dimensions in):
/// a 1-D dataset marked `CLASS = "DIMENSION_SCALE"` with a `NAME`, referenced from each dataset axis it labels
/// (`DIMENSION_LIST` on the dataset, `REFERENCE_LIST` on the scale). h5py (`ds.dims[i]`), xarray through h5netcdf,
/// netCDF-C (`ncdump`) and HDFView read the axis names from them.
extension HDF5Dataset {
    /// Attribute names the H5DS functions own on a dataset or scale (never copied as plain attributes: they hold
    /// object references into their own file).
    public static let dimensionScaleAttributes: Set<String> = ["DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS", "CLASS", "NAME"]

    /// Makes this (1-D) dataset a dimension scale named `name` (H5DSset_scale).
    public func makeDimensionScale(name scaleName: String) throws {
        try HDF5.locked { _ = try HDF5.check(H5DSset_scale(id, scaleName), "make \(name) a dimension scale in \(path)") }
    }

    /// Attaches `scale` to axis `axis` of this dataset and labels the axis with the scale's name.
    public func attach(scale: HDF5Dataset, axis: Int, label: String) throws {
        try HDF5.locked {
            try HDF5.check(H5DSattach_scale(id, scale.id, UInt32(axis)), "attach dimension \(label) to axis \(axis) of \(name) in \(path)")
            try HDF5.check(H5DSset_label(id, UInt32(axis), label), "label axis \(axis) of \(name) in \(path)")
        }
    }

    /// Whether this dataset is a dimension scale.
    public var isDimensionScale: Bool { HDF5.locked { H5DSis_scale(id) > 0 } }

    /// The name of the (first) dimension scale attached to each axis, nil for an axis with none. Reading them
    /// follows every reference in `DIMENSION_LIST`, so a damaged one is an error here.
    public func dimensionScaleNames() throws -> [String?] {
        let rank = try shape().count
        return try HDF5.locked {
            var names: [String?] = []
            for axis in 0..<rank {
                let count = H5DSget_num_scales(id, UInt32(axis))
                if count <= 0 { H5Eclear2(hid_t(0)); names.append(nil); continue }
                final class Found { var name: String? = nil; var failed = false }
                let found = Found()
                let box = Unmanaged.passRetained(found)
                defer { box.release() }
                var index: Int32 = 0
                let status = H5DSiterate_scales(id, UInt32(axis), &index, { _, _, scale, data in
                    let found = Unmanaged<Found>.fromOpaque(data!).takeUnretainedValue()
                    let size = H5DSget_scale_name(scale, nil, 0)
                    guard size >= 0 else { found.failed = true; return -1 }
                    var buf = [CChar](repeating: 0, count: Int(size) + 1)
                    guard H5DSget_scale_name(scale, &buf, buf.count) >= 0 else { found.failed = true; return -1 }
                    found.name = String(cString: buf)
                    return 1   // the first scale of the axis is its name (as netCDF-C and h5netcdf take the last, RuleLens attaches one)
                }, box.toOpaque())
                if status < 0 || found.failed {
                    throw HDF5.failure("read the dimension scale of axis \(axis) of \(name) in \(path)",
                                       fix: "the file's dimension references are damaged; regenerate it")
                }
                names.append(found.name)
            }
            return names
        }
    }
}

/// The named dimensions of one HDF5 file, as root-level dimension scales that every group's datasets share: one
/// unlimited `example` dimension (its values: the row index 0…N-1, extended as rows are written) and one fixed
/// dimension per (name, size) (values 0…size-1). A name met again with another size becomes `name_size`, so a
/// dimension never has two lengths.
public final class HDF5Dimensions {
    /// The unlimited dimension every row-stacked dataset starts with.
    public static let example = "example"
    private let file: HDF5File
    private var scales: [String: (size: Int?, dataset: HDF5Dataset)] = [:]
    /// Rows of `example` holding their index.
    private var exampleRows = 0
    /// Whether the file existed before (then only the scales it has are used).
    private var reopened = false

    /// Creates the dimensions of a new `file` (nothing is written until a dataset is attached).
    public init(file: HDF5File) { self.file = file }

    /// Reopens the dimensions of an existing file: its root-level dimension scales (none in files written before
    /// RuleLens wrote them; attaching then does nothing, so resumed old files keep their layout).
    public init(reopening file: HDF5File) throws {
        self.file = file
        for name in try file.childNames() where file.isDataset(name) {
            let ds = try file.openDataset(name)
            guard ds.isDimensionScale else { continue }
            let rows = try ds.shape().first ?? 0
            scales[name] = (name == Self.example ? nil : rows, ds)
            if name == Self.example { exampleRows = rows }
        }
        reopened = true
    }

    /// The scale named `name` (or `name_size` when `name` has another size) for an axis of `size` (nil: the example
    /// axis), created on first use.
    func scale(_ name: String, size: Int?) throws -> HDF5Dataset {
        if let existing = scales[name], existing.size == size { return existing.dataset }
        let key = scales[name] == nil ? name : "\(name)_\(size.map(String.init) ?? "n")"
        if let existing = scales[key] { return existing.dataset }
        let ds: HDF5Dataset
        if let size {
            ds = try file.createDataset(key, type: .int32, shape: [size])
            let values = (0..<size).map { Int32($0) }
            try values.withUnsafeBytes { try ds.writeRows(start: 0, count: size, $0.baseAddress!) }
        } else {
            ds = try file.createDataset(key, type: .int64, shape: [0], maxDims: [nil], chunk: [4096])
        }
        try ds.makeDimensionScale(name: key)
        scales[key] = (size, ds)
        return ds
    }

    /// Attaches the dimensions `dims` (one name per axis; the first is the example axis when `examples`) to `dataset`
    /// of shape `shape`. Does nothing for a reopened file that has no dimension scales.
    public func attach(_ dataset: HDF5Dataset, dims: [String], shape: [Int], examples: Bool = true) throws {
        precondition(dims.count == shape.count, "one dimension name per axis")
        if reopened && scales.isEmpty { return }
        for (axis, name) in dims.enumerated() {
            let scale = try scale(name, size: examples && axis == 0 ? nil : shape[axis])
            try dataset.attach(scale: scale, axis: axis, label: name)
        }
    }

    /// Extends the example dimension to `rows` rows (writing their indices) or cuts it back to `rows`.
    public func setExamples(_ rows: Int) throws {
        guard let ds = scales[Self.example]?.dataset, rows != exampleRows else { return }
        try ds.resize(rows: rows)
        if rows > exampleRows {
            let values = (exampleRows..<rows).map { Int64($0) }
            try values.withUnsafeBytes { try ds.writeRows(start: exampleRows, count: values.count, $0.baseAddress!) }
        }
        exampleRows = rows
    }
}
