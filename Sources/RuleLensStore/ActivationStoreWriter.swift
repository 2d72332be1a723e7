import Foundation
import RuleLensNumerics

/// Streams an activation file (Data/ACTIVATIONS.md) batch by batch; memory stays flat in the number of examples.
///
/// Protocol: the file is created at its final name with root attribute `complete` = 0. Each batch appends
/// rows to every /meta column and /acts dataset, then `endBatch` records `examples_written` and flushes, so a
/// process killed at any point leaves a file that is visibly incomplete and holds the flushed examples.
/// `finish()` sets `complete` = 1. `resume(…)` reopens an incomplete file whose identity matches and continues
/// after its last flushed example.
public final class ActivationStoreWriter {
    /// The output path.
    public let path: String
    /// Examples fully written and flushed (or written and awaiting the next flush).
    public private(set) var examplesWritten: Int
    /// The header the file was created with.
    public let header: ActivationStoreHeader

    private let file: HDF5File
    private var acts: [String: (spec: ActivationSiteSpec, dataset: HDF5Dataset)] = [:]
    /// Rows per chunk and gzip level (0: none) of the /acts datasets this writer created, whose whole chunks are
    /// encoded here (in parallel) and written directly; absent for resumed datasets, which go through HDF5's own
    /// write path.
    private var directChunks: [String: (rows: Int, level: Int)] = [:]
    private var meta: [String: (spec: MetaColumnSpec, dataset: HDF5Dataset)] = [:]
    /// The file's named dimensions (root-level HDF5 dimension scales shared by /acts and /meta).
    private var dimensions: HDF5Dimensions
    /// Running checksum and row count of each string column (`HDF5Dataset.stringChecksumAttribute`).
    private var stringChecksums: [String: (fingerprint: Fingerprint, rows: Int)] = [:]
    /// Rows appended to each dataset in the current batch (all must agree at endBatch).
    private var batchRows: [String: Int] = [:]
    private var finished = false

    private init(path: String, file: HDF5File, header: ActivationStoreHeader, examplesWritten: Int, dimensions: HDF5Dimensions) {
        self.path = path; self.file = file; self.header = header; self.examplesWritten = examplesWritten
        self.dimensions = dimensions
    }

    /// Rows per chunk for a row of `rowBytes`: the batch size, capped so a chunk stays near 4 MiB.
    static func chunkRows(rowBytes: Int, batch: Int) -> Int {
        max(1, min(max(1, batch), (4 << 20) / max(1, rowBytes)))
    }

    /// Creates a new file (refusing to replace an existing one unless `overwrite`).
    /// `batch` is the number of examples per `endBatch` (chunks are aligned to it); `gzip` 0 disables compression.
    public static func create(path: String, header: ActivationStoreHeader, sites: [ActivationSiteSpec],
                              meta: [MetaColumnSpec], batch: Int, gzip: Int = 1, overwrite: Bool) throws -> ActivationStoreWriter {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw RuleLensError("\(path) already exists", fix: "pass --force to overwrite it, --resume to continue an incomplete dump, or choose another --out")
        }
        let file = try HDF5File.create(path, overwrite: overwrite)
        let writer = ActivationStoreWriter(path: path, file: file, header: header, examplesWritten: 0,
                                           dimensions: HDF5Dimensions(file: file))
        do {
            try file.setAttribute("format", ActivationStoreFormat.name)
            try file.setAttribute("format_version", ActivationStoreFormat.version)
            try file.setAttribute("complete", 0)
            try file.setAttribute("examples_written", 0)
            for (k, v) in header.stringAttributes { try file.setAttribute(k, v) }
            try file.setAttribute("seed", header.seed)
            try file.setAttribute("max_length", header.maxLength)
            try file.setAttribute("n_examples", header.nExamples)
            try file.setAttribute("created_utc", ISO8601DateFormatter().string(from: Date()))
            try file.setAttribute("rulelens_version", RuleLensVersion.string)
            try file.setAttribute("hdf5_version", HDF5Library.version)
            // Provenance: activations are bitwise reproducible for the same BLAS kernel and thread count.
            let blas = BLASProvenance.current
            try file.setAttribute("blas_core", blas.core)
            try file.setAttribute("blas_config", blas.config)
            try file.setAttribute("openblas_coretype", blas.coretypeEnv)
            try file.setAttribute("threads", blas.threads)
            try file.createGroup(ActivationStoreFormat.metaGroup)
            try file.createGroup(ActivationStoreFormat.actsGroup)
            for column in meta {
                let isString = column.type == .string
                let inner = isString ? [] : (column.width.map { [$0] } ?? [])
                let rowBytes = isString ? max(8, column.width ?? 8) : 4 * (column.width ?? 1)
                let rows = min(4096, max(256, chunkRows(rowBytes: rowBytes, batch: batch)))
                let ds = try file.createDataset("\(ActivationStoreFormat.metaGroup)/\(column.name)", type: column.type, shape: [0] + inner,
                                                maxDims: [nil] + inner, chunk: [rows] + inner,
                                                // Variable-length strings too: their chunks hold the heap references,
                                                // and a damaged compressed chunk fails zlib's Adler-32 check instead of
                                                // sending HDF5 after a garbage length.
                                                gzip: gzip,
                                                cacheBytes: 2 * rows * rowBytes + (1 << 20),
                                                stringWidth: isString ? column.width : nil)
                try writer.dimensions.attach(ds, dims: column.dims, shape: [0] + inner)
                writer.meta[column.name] = (column, ds)
            }
            for site in sites {
                let rowBytes = 4 * site.rowElements
                let rows = chunkRows(rowBytes: rowBytes, batch: batch)
                let ds = try file.createDataset("\(ActivationStoreFormat.actsGroup)/\(site.name)", type: .float32,
                                                shape: [0] + site.rowShape, maxDims: [nil] + site.rowShape.map { $0 },
                                                chunk: [rows] + site.rowShape, gzip: gzip,
                                                cacheBytes: 2 * rows * rowBytes + (1 << 20))
                try ds.setAttribute("dims", (["example"] + site.rowDims).joined(separator: ","))
                try writer.dimensions.attach(ds, dims: [HDF5Dimensions.example] + site.rowDims, shape: [0] + site.rowShape)
                try ds.setAttribute("position", header.positions)
                writer.acts[site.name] = (site, ds)
                writer.directChunks[site.name] = (rows, gzip)
            }
            try file.flush()
        } catch {
            // Nothing valid was written: remove the fresh file rather than leave a husk behind.
            file.close()
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return writer
    }

    /// Reopens an incomplete file for appending. Refuses (with the reason) if it is complete, not a RuleLens
    /// activation file, or was made from a different model, data, hook list or position mode.
    public static func resume(path: String, header: ActivationStoreHeader, sites: [ActivationSiteSpec],
                              meta: [MetaColumnSpec]) throws -> ActivationStoreWriter {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuleLensError("--resume was given but \(path) does not exist", fix: "drop --resume to start a new dump")
        }
        let file: HDF5File
        do { file = try HDF5File.open(path, writable: true) } catch let e as RuleLensError {
            throw RuleLensError("cannot resume \(path): \(e.problem)", fix: "start over with --force (the partial file is damaged)")
        }
        guard (try? file.stringAttribute("format")) == ActivationStoreFormat.name else {
            throw RuleLensError("cannot resume \(path): it is not a RuleLens activation file", fix: "choose another --out, or pass --force to replace it")
        }
        let version = try file.intAttribute("format_version")
        guard version == ActivationStoreFormat.version else {
            throw RuleLensError("cannot resume \(path): it has format_version \(version), this RuleLens writes \(ActivationStoreFormat.version)",
                                fix: "start over with --force")
        }
        if try file.intAttribute("complete") == 1 {
            throw RuleLensError("cannot resume \(path): it is already complete", fix: "nothing to do; pass --force instead of --resume to redo it")
        }
        // Identity: the same model, data, hooks and positions, else the rows would not belong together.
        var wanted = header.stringAttributes
        wanted["max_length"] = String(header.maxLength)
        wanted["n_examples"] = String(header.nExamples)
        for key in ActivationStoreFormat.identityKeys {
            guard let want = wanted[key] else { continue }
            let have: String
            if key == "max_length" || key == "n_examples" {
                have = (try? file.intAttribute(key)).map(String.init) ?? "(missing)"
            } else {
                have = (try? file.stringAttribute(key)) ?? "(missing)"
            }
            if have != want {
                let shorten = { (s: String) in s.count > 120 ? String(s.prefix(117)) + "..." : s }
                throw RuleLensError("cannot resume \(path): its \(key) differs from this run's (file: \(shorten(have)); now: \(shorten(want)))",
                                    fix: "rerun with the same checkpoint, data, --hooks and --positions as the interrupted dump, or start over with --force")
            }
        }
        let written = try file.intAttribute("examples_written")
        let writer = ActivationStoreWriter(path: path, file: file, header: header, examplesWritten: written,
                                           dimensions: try HDF5Dimensions(reopening: file))
        for column in meta {
            let name = "\(ActivationStoreFormat.metaGroup)/\(column.name)"
            let ds = try file.openDataset(name, cacheBytes: 8 << 20)
            writer.meta[column.name] = (column, ds)
        }
        for site in sites {
            let ds = try file.openDataset("\(ActivationStoreFormat.actsGroup)/\(site.name)", cacheBytes: 2 * 4 * site.rowElements * 64 + (1 << 20))
            let shape = try ds.shape()
            guard Array(shape.dropFirst()) == site.rowShape else {
                throw RuleLensError("cannot resume \(path): /acts/\(site.name) has rows of shape \(Array(shape.dropFirst())), this run makes \(site.rowShape)",
                                    fix: "start over with --force")
            }
            writer.acts[site.name] = (site, ds)
        }
        // Rows past the last flush may be partial: cut every dataset back to the flushed count.
        for (_, entry) in writer.meta { try entry.dataset.resize(rows: written) }
        for (_, entry) in writer.acts { try entry.dataset.resize(rows: written) }
        try writer.dimensions.setExamples(written)
        for (name, entry) in writer.meta where entry.spec.type == .string {
            var fingerprint = Fingerprint()
            HDF5Dataset.stringChecksum(try entry.dataset.readStrings(start: 0, count: written), into: &fingerprint)
            writer.stringChecksums[name] = (fingerprint, written)
        }
        try file.flush()
        return writer
    }

    private func noteRows(_ key: String, _ count: Int) throws {
        guard !finished else { throw RuleLensError("the activation file \(path) is already closed", fix: "open a new writer") }
        batchRows[key, default: 0] += count
    }

    /// Appends `count` example rows (count × rowElements floats, row-major) to the site's dataset.
    public func appendActs(_ site: String, count: Int, _ values: UnsafePointer<Float>) throws {
        guard let entry = acts[site] else {
            throw RuleLensError("\(site) is not a site of \(path)", fix: "declare it when creating the writer")
        }
        let start = examplesWritten + (batchRows["acts/" + site] ?? 0)
        try entry.dataset.resize(rows: start + count)
        try entry.dataset.writeRows(start: start, count: count, UnsafeRawPointer(values))
        try noteRows("acts/" + site, count)
    }

    /// Appends `count` example rows to several sites at once (each pointer: count × rowElements floats).
    /// Whole chunks of compressed datasets are shuffled and deflated on every core (`ChunkCodec`), then written
    /// directly; anything not chunk-aligned goes through `appendActs(_:count:_:)`.
    public func appendActs(_ sites: [(site: String, values: UnsafePointer<Float>)], count: Int) throws {
        guard count > 0 else { return }
        struct Task { let site: String; let dataset: HDF5Dataset; let source: UnsafePointer<Float>; let rows: Int
                      let chunkRows: Int; let rowElements: Int; let fileRow: Int; let rank: Int; let level: Int }
        var tasks: [Task] = []
        for (site, values) in sites {
            guard let entry = acts[site] else {
                throw RuleLensError("\(site) is not a site of \(path)", fix: "declare it when creating the writer")
            }
            let start = examplesWritten + (batchRows["acts/" + site] ?? 0)
            guard let direct = directChunks[site], start % direct.rows == 0 else {
                try appendActs(site, count: count, values)
                continue
            }
            try entry.dataset.resize(rows: start + count)
            let rowElements = entry.spec.rowElements
            var r = 0
            while r < count {
                let rows = min(direct.rows, count - r)
                tasks.append(Task(site: site, dataset: entry.dataset, source: values + r * rowElements, rows: rows,
                                  chunkRows: direct.rows, rowElements: rowElements, fileRow: start + r,
                                  rank: entry.spec.rowShape.count + 1, level: direct.level))
                r += rows
            }
        }
        // Level 0 (no filters): whole chunks go to the file straight from `values`; only a partial last chunk is
        // padded into a copy. Otherwise every chunk is shuffled and deflated, one chunk per claim, on every thread.
        var encoded = [[UInt8]?](repeating: nil, count: tasks.count)
        var failure: Error? = nil
        let lock = NSLock()
        encoded.withUnsafeMutableBufferPointer { results in
            Parallel.forEach(chunks: tasks.count, threads: Parallel.threads) { i in
                let t = tasks[i]
                let chunkBytes = 4 * t.chunkRows * t.rowElements
                if t.level == 0 && t.rows == t.chunkRows { return }
                do {
                    if t.rows == t.chunkRows {
                        results[i] = try ChunkCodec.encode(UnsafeRawPointer(t.source), bytes: chunkBytes, level: t.level)
                    } else {
                        // The last, partial chunk: pad to the full chunk with zeros (rows past the extent are not visible).
                        let padded = UnsafeMutablePointer<Float>.allocate(capacity: t.chunkRows * t.rowElements)
                        defer { padded.deallocate() }
                        padded.update(from: t.source, count: t.rows * t.rowElements)
                        (padded + t.rows * t.rowElements).update(repeating: 0, count: (t.chunkRows - t.rows) * t.rowElements)
                        results[i] = t.level == 0
                            ? [UInt8](UnsafeRawBufferPointer(start: padded, count: chunkBytes))
                            : try ChunkCodec.encode(UnsafeRawPointer(padded), bytes: chunkBytes, level: t.level)
                    }
                } catch {
                    lock.lock(); failure = error; lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        for (i, t) in tasks.enumerated() {
            if let bytes = encoded[i] {
                try bytes.withUnsafeBytes { try t.dataset.writeRawChunk(row: t.fileRow, rank: t.rank, $0.baseAddress!, count: $0.count) }
            } else {
                try t.dataset.writeRawChunk(row: t.fileRow, rank: t.rank, UnsafeRawPointer(t.source), count: 4 * t.chunkRows * t.rowElements)
            }
        }
        var perSite: [String: Int] = [:]
        for t in tasks { perSite[t.site, default: 0] += t.rows }
        for (site, rows) in perSite { try noteRows("acts/" + site, rows) }
    }

    /// Appends integer values to a numeric /meta column (count × width values).
    public func appendMeta(_ column: String, ints: [Int]) throws {
        guard let entry = meta[column], entry.spec.type != .string else {
            throw RuleLensError("\(column) is not a numeric meta column of \(path)", fix: "declare it when creating the writer")
        }
        let width = entry.spec.width ?? 1
        precondition(ints.count % width == 0, "meta column \(column) takes rows of \(width) values")
        let count = ints.count / width
        let start = examplesWritten + (batchRows["meta/" + column] ?? 0)
        try entry.dataset.resize(rows: start + count)
        if entry.spec.type == .int32 {
            let narrow = ints.map { Int32(truncatingIfNeeded: $0) }
            try narrow.withUnsafeBytes { try entry.dataset.writeRows(start: start, count: count, $0.baseAddress!) }
        } else {
            let wide = ints.map { Int64($0) }
            try wide.withUnsafeBytes { try entry.dataset.writeRows(start: start, count: count, $0.baseAddress!) }
        }
        try noteRows("meta/" + column, count)
    }

    /// Appends strings to a string /meta column.
    public func appendMeta(_ column: String, strings: [String]) throws {
        guard let entry = meta[column], entry.spec.type == .string else {
            throw RuleLensError("\(column) is not a string meta column of \(path)", fix: "declare it when creating the writer")
        }
        let start = examplesWritten + (batchRows["meta/" + column] ?? 0)
        try entry.dataset.resize(rows: start + strings.count)
        try entry.dataset.writeStrings(start: start, strings)
        var checksum = stringChecksums[column] ?? (Fingerprint(), 0)
        HDF5Dataset.stringChecksum(strings, into: &checksum.fingerprint)
        checksum.rows += strings.count
        stringChecksums[column] = checksum
        try noteRows("meta/" + column, strings.count)
    }

    /// Closes a batch of `count` examples: every dataset must have received exactly `count` rows.
    /// With `flush`, the file is flushed so a crash after this point keeps these examples.
    public func endBatch(count: Int, flush: Bool = true) throws {
        let expected = Set(acts.keys.map { "acts/" + $0 } + meta.keys.map { "meta/" + $0 })
        for key in expected where batchRows[key, default: 0] != count {
            throw RuleLensError("internal: \(key) got \(batchRows[key, default: 0]) rows in a batch of \(count)",
                                fix: "report this as a RuleLens bug")
        }
        batchRows = [:]
        examplesWritten += count
        try dimensions.setExamples(examplesWritten)
        if flush { try checkpoint() }
    }

    /// Records `examples_written` and flushes the file to disk.
    public func checkpoint() throws {
        try file.setAttribute("examples_written", examplesWritten)
        for (column, checksum) in stringChecksums {
            try meta[column]?.dataset.setAttribute(HDF5Dataset.stringChecksumAttribute, "\(checksum.rows):\(checksum.fingerprint.hex)")
        }
        try file.flush()
    }

    /// Marks the file complete (`complete` = 1) and closes it.
    public func finish() throws {
        guard !finished else { return }
        try checkpoint()
        try file.setAttribute("complete", 1)
        try file.setAttribute("completed_utc", ISO8601DateFormatter().string(from: Date()))
        try file.flush()
        finished = true
        for (_, e) in acts { e.dataset.close() }
        for (_, e) in meta { e.dataset.close() }
        file.close()
    }

    /// Closes without marking complete (the file stays resumable).
    public func abandon() {
        finished = true
        for (_, e) in acts { e.dataset.close() }
        for (_, e) in meta { e.dataset.close() }
        file.close()
    }
}
