import Foundation
import XCTest
@testable import RuleLensStore
import RuleLensNumerics

/// Writer/reader round trips on synthetic arrays (no model needed): values, layout, positions, resume, refusals.
final class ActivationStoreTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rulelens-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let T = 5, d = 3, heads = 2
    let sites = [ActivationSiteSpec(name: "blocks.0.hook_resid_post", rowShape: [T, d], rowDims: ["pos", "d_model"]),
                 ActivationSiteSpec(name: "blocks.0.attn.hook_pattern", rowShape: [heads, T, T], rowDims: ["head", "q_pos", "k_pos"])]
    let meta = [MetaColumnSpec(name: "id", type: .int64), MetaColumnSpec(name: "length", type: .int32),
                MetaColumnSpec(name: "answer_pos", type: .int32), MetaColumnSpec(name: "tokens", type: .int32, width: T),
                MetaColumnSpec(name: "prompt", type: .string, width: 12)]

    func header(n: Int, hooks: [String]? = nil) -> ActivationStoreHeader {
        ActivationStoreHeader(modelConfigJSON: "{\"n_layer\":1}", hooks: hooks ?? sites.map(\.name), sourceCheckpoint: "ckpt",
                              sourceData: "data.jsonl", seed: 7, positions: "all", maxLength: Self.T, nExamples: n,
                              extra: ["data_fingerprint": "abc"])
    }

    /// Deterministic synthetic value of site s, example e, element i.
    static func value(_ s: Int, _ e: Int, _ i: Int) -> Float { Float(s * 100_000 + e * 100 + i) * 0.25 - 3 }
    static func length(_ e: Int) -> Int { 2 + e % 4 }   // 2…5 ≤ T

    /// `together`: all sites in one call (the parallel, directly written chunk path) instead of one call per site.
    func writeBatches(_ writer: ActivationStoreWriter, from: Int, to: Int, batch: Int, together: Bool = false) throws {
        var e0 = from
        while e0 < to {
            let n = min(batch, to - e0)
            let rows: [[Float]] = sites.enumerated().map { s, site in
                (e0..<(e0 + n)).flatMap { e in (0..<site.rowElements).map { Self.value(s, e, $0) } }
            }
            if together {
                let pointers = rows.map { r -> UnsafeMutablePointer<Float> in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: r.count); p.initialize(from: r, count: r.count); return p
                }
                defer { pointers.forEach { $0.deallocate() } }
                try writer.appendActs(zip(sites, pointers).map { ($0.name, UnsafePointer($1)) }, count: n)
            } else {
                for (site, r) in zip(sites, rows) {
                    try r.withUnsafeBufferPointer { try writer.appendActs(site.name, count: n, $0.baseAddress!) }
                }
            }
            let es = Array(e0..<(e0 + n))
            try writer.appendMeta("id", ints: es)
            try writer.appendMeta("length", ints: es.map(Self.length))
            try writer.appendMeta("answer_pos", ints: es.map { Self.length($0) - 2 })
            try writer.appendMeta("tokens", ints: es.flatMap { e in (0..<Self.T).map { $0 < Self.length(e) ? e + $0 : 0 } })
            try writer.appendMeta("prompt", strings: es.map { "prompt \($0) é" })
            try writer.endBatch(count: n)
            e0 += n
        }
    }

    func testRoundTripValuesLayoutAndPositions() throws {
        let path = dir.appendingPathComponent("a.h5").path
        let n = 23
        let writer = try ActivationStoreWriter.create(path: path, header: header(n: n), sites: sites, meta: meta, batch: 4, overwrite: false)
        try writeBatches(writer, from: 0, to: n, batch: 4)
        try writer.finish()

        let reader = try ActivationStoreReader(path: path)
        XCTAssertTrue(reader.complete)
        XCTAssertEqual(reader.count, n)
        XCTAssertEqual(reader.hooks, sites.map(\.name))
        XCTAssertEqual(reader.sites.map(\.shape), [[n, Self.T, Self.d], [n, Self.heads, Self.T, Self.T]])
        XCTAssertEqual(reader.sites[1].dims, ["example", "head", "q_pos", "k_pos"])
        XCTAssertEqual(reader.attribute("seed"), "7")
        XCTAssertEqual(try reader.stringColumn("prompt", examples: 5..<7), ["prompt 5 é", "prompt 6 é"])
        XCTAssertEqual(try reader.intColumn("id"), Array(0..<n))

        for (s, site) in sites.enumerated() {
            let (shape, values) = try reader.read(site: site.name, examples: 3..<11)
            XCTAssertEqual(shape, [8] + site.rowShape)
            for e in 0..<8 { for i in 0..<site.rowElements { XCTAssertEqual(values[e * site.rowElements + i], Self.value(s, e + 3, i)) } }
        }
        // Positions on [N, pos, d]: last, answer, fixed, negative, mean.
        let resid = sites[0].name
        let last = try reader.readPosition(site: resid, .last)
        let answer = try reader.readPosition(site: resid, .answer)
        let fixed = try reader.readPosition(site: resid, .index(1))
        let back = try reader.readPosition(site: resid, .index(-2))
        let mean = try reader.readPosition(site: resid, .mean)
        XCTAssertEqual(last.cols, Self.d)
        for e in 0..<n {
            let L = Self.length(e)
            for c in 0..<Self.d {
                XCTAssertEqual(last[e, c], Self.value(0, e, (L - 1) * Self.d + c))
                XCTAssertEqual(answer[e, c], Self.value(0, e, (L - 2) * Self.d + c))
                XCTAssertEqual(fixed[e, c], Self.value(0, e, 1 * Self.d + c))
                XCTAssertEqual(back[e, c], Self.value(0, e, (L - 2) * Self.d + c))
                let m = (0..<L).map { Double(Self.value(0, e, $0 * Self.d + c)) }.reduce(0, +) / Double(L)
                XCTAssertEqual(Double(mean[e, c]), m, accuracy: 1e-3 * max(1, abs(m)))
            }
        }
        // Positions on the query axis of [N, head, q_pos, k_pos] keep [head, k_pos].
        let pattern = try reader.readPosition(site: sites[1].name, .last, examples: 2..<4)
        XCTAssertEqual(pattern.cols, Self.heads * Self.T)
        for e in 0..<2 { for h in 0..<Self.heads { for k in 0..<Self.T {
            let L = Self.length(e + 2)
            XCTAssertEqual(pattern[e, h * Self.T + k], Self.value(1, e + 2, (h * Self.T + (L - 1)) * Self.T + k))
        } } }
        XCTAssertThrowsError(try reader.readPosition(site: resid, .index(4))) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("outside example") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try reader.site("blocks.9.hook_resid_post"))
        // The generic matrix reader works on any 2-D dataset.
        let tokens = try ActivationStoreReader.readMatrix(path: path, dataset: "/meta/tokens")
        XCTAssertEqual(tokens.rows, n); XCTAssertEqual(tokens.cols, Self.T)
        XCTAssertEqual(tokens[4, 1], 5)
        XCTAssertThrowsError(try ActivationStoreReader.readMatrix(path: path, dataset: "acts/nope"))
    }

    func testIncompleteFileIsRefusedThenResumed() throws {
        let path = dir.appendingPathComponent("b.h5").path
        let n = 17
        var writer: ActivationStoreWriter? = try ActivationStoreWriter.create(path: path, header: header(n: n), sites: sites, meta: meta, batch: 4, overwrite: false)
        try writeBatches(writer!, from: 0, to: 8, batch: 4)
        writer!.abandon()
        writer = nil
        XCTAssertThrowsError(try ActivationStoreReader(path: path)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("incomplete") ?? false, "\(error)")
        }
        do {
            let partial = try ActivationStoreReader(path: path, allowIncomplete: true)
            XCTAssertFalse(partial.complete)
            XCTAssertEqual(partial.count, 8)
        }

        // Never replaced without being asked.
        XCTAssertThrowsError(try ActivationStoreWriter.create(path: path, header: header(n: n), sites: sites, meta: meta, batch: 4, overwrite: false)) { error in
            XCTAssertTrue((error as? RuleLensError)?.fix.contains("--force") ?? false)
        }
        // A different hook list or data refuses with the reason.
        XCTAssertThrowsError(try ActivationStoreWriter.resume(path: path, header: header(n: n, hooks: ["hook_embed"]), sites: sites, meta: meta)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("hooks differs") ?? false, "\(error)")
        }
        var other = header(n: n); other.extra["data_fingerprint"] = "zzz"
        XCTAssertThrowsError(try ActivationStoreWriter.resume(path: path, header: other, sites: sites, meta: meta))

        let resumed = try ActivationStoreWriter.resume(path: path, header: header(n: n), sites: sites, meta: meta)
        XCTAssertEqual(resumed.examplesWritten, 8)
        try writeBatches(resumed, from: 8, to: n, batch: 4)
        try resumed.finish()
        do {
            let reader = try ActivationStoreReader(path: path)
            XCTAssertEqual(reader.count, n)
            XCTAssertEqual(try reader.intColumn("id"), Array(0..<n))
            let (_, values) = try reader.read(site: sites[0].name)
            for e in 0..<n { for i in 0..<sites[0].rowElements { XCTAssertEqual(values[e * sites[0].rowElements + i], Self.value(0, e, i)) } }
        }
        XCTAssertThrowsError(try ActivationStoreWriter.resume(path: path, header: header(n: n), sites: sites, meta: meta)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("already complete") ?? false)
        }
    }

    func testParallelChunksDecodeWithHDF5sFiltersAndMixWithResumedWrites() throws {
        let path = dir.appendingPathComponent("d.h5").path
        let n = 19
        let writer = try ActivationStoreWriter.create(path: path, header: header(n: n), sites: sites, meta: meta, batch: 4, gzip: 6, overwrite: false)
        // 10 rows: two full chunks and a zero-padded partial one, compressed by ChunkCodec.
        try writeBatches(writer, from: 0, to: 10, batch: 4, together: true)
        writer.abandon()
        // Resumed writes go through HDF5's own filters, filling the partial chunk (decoded by HDF5's inflate + unshuffle).
        let resumed = try ActivationStoreWriter.resume(path: path, header: header(n: n), sites: sites, meta: meta)
        try writeBatches(resumed, from: 10, to: n, batch: 4, together: true)
        try resumed.finish()
        let reader = try ActivationStoreReader(path: path)
        for (s, site) in sites.enumerated() {
            let (_, values) = try reader.read(site: site.name)
            for e in 0..<n { for i in 0..<site.rowElements { XCTAssertEqual(values[e * site.rowElements + i], Self.value(s, e, i), "\(site.name) \(e) \(i)") } }
        }
        // The chunks really are compressed: each dataset is smaller than its raw floats.
        let file = try HDF5File.open(path)
        for site in sites {
            let stored = try file.openDataset("acts/\(site.name)").storageBytes()
            XCTAssertGreaterThan(stored, 0)
            XCTAssertLessThan(stored, 4 * n * site.rowElements, site.name)
        }
    }

    func testTruncatedCorruptAndForeignFilesAreClearErrors() throws {
        let path = dir.appendingPathComponent("c.h5").path
        let writer = try ActivationStoreWriter.create(path: path, header: header(n: 40), sites: sites, meta: meta, batch: 8, overwrite: false)
        try writeBatches(writer, from: 0, to: 40, batch: 8)
        try writer.finish()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))

        // Missing file.
        XCTAssertThrowsError(try ActivationStoreReader(path: dir.appendingPathComponent("missing.h5").path)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("does not exist") ?? false)
        }
        // Not HDF5 at all.
        let text = dir.appendingPathComponent("text.h5").path
        try Data("not an hdf5 file\n".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try ActivationStoreReader(path: text)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("not a readable HDF5 file") ?? false, "\(error)")
        }
        // Truncated at several points: an error every time, never a crash.
        for fraction in [0.1, 0.5, 0.9, 0.99] {
            let cut = dir.appendingPathComponent("cut.h5").path
            try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: URL(fileURLWithPath: cut))
            XCTAssertThrowsError(try readEverything(cut), "truncated to \(fraction)") { error in
                XCTAssertTrue(error is RuleLensError, "\(error)")
            }
        }
        // Zeroed stretches in the middle (corrupt chunks or metadata): either a RuleLensError or — if only
        // compressed bytes of nothing read were hit — a successful read; never a crash.
        for start in stride(from: 512, to: bytes.count - 256, by: max(257, bytes.count / 9)) {
            var damaged = bytes
            damaged.replaceSubrange(start..<(start + 256), with: Data(count: 256))
            let bad = dir.appendingPathComponent("bad.h5").path
            try damaged.write(to: URL(fileURLWithPath: bad))
            do { try readEverything(bad) } catch { XCTAssertTrue(error is RuleLensError, "\(error)") }
        }
        // Random bytes overwritten at random places (seeded): same rule — except inside HDF5's global heap
        // collections ("GCOL": the variable-length root attributes), where libhdf5 1.10's H5HG_read itself crashes
        // on damage (Data/ACTIVATIONS.md, "Known limit"; this file's /meta strings are fixed-length, so the heap is tiny).
        let heaps = globalHeapRanges(bytes)
        XCTAssertFalse(heaps.isEmpty)
        var rng = SeededRNG(seed: 11)
        var tried = 0
        while tried < 60 {
            let at = 8 + rng.int(below: bytes.count - 72)
            if heaps.contains(where: { $0.overlaps(at..<(at + 64)) }) { continue }
            tried += 1
            var damaged = bytes
            for k in 0..<64 { damaged[at + k] = UInt8(truncatingIfNeeded: rng.int(below: 256)) }
            let bad = dir.appendingPathComponent("flipped.h5").path
            try damaged.write(to: URL(fileURLWithPath: bad))
            do { try readEverything(bad) } catch { XCTAssertTrue(error is RuleLensError, "\(error)") }
        }
        // An HDF5 file that is not an activation file.
        let plain = dir.appendingPathComponent("plain.h5").path
        let f = try HDF5File.create(plain, overwrite: false)
        let ds = try f.createDataset("x", type: .float32, shape: [3, 2])
        let xs: [Float] = [1, 2, 3, 4, 5, 6]
        try xs.withUnsafeBytes { try ds.writeRows(start: 0, count: 3, $0.baseAddress!) }
        ds.close(); f.close()
        XCTAssertThrowsError(try ActivationStoreReader(path: plain)) { error in
            XCTAssertTrue((error as? RuleLensError)?.problem.contains("not a RuleLens activation file") ?? false)
        }
        let m = try ActivationStoreReader.readMatrix(path: plain, dataset: "x")
        XCTAssertEqual(m.values.toArray(), xs)
    }

    /// Byte ranges of HDF5 global heap collections: "GCOL", version, 3 reserved bytes, then the 8-byte size.
    private func globalHeapRanges(_ bytes: Data) -> [Range<Int>] {
        let b = [UInt8](bytes)
        var out: [Range<Int>] = []
        var i = 0
        while i + 16 <= b.count {
            if b[i] == 0x47 && b[i + 1] == 0x43 && b[i + 2] == 0x4F && b[i + 3] == 0x4C {
                var size = 0
                for k in 0..<8 { size |= Int(b[i + 8 + k]) << (8 * k) }
                out.append(i..<min(b.count, i + max(size, 16)))
                i += max(size, 16)
            } else { i += 1 }
        }
        return out
    }

    private func readEverything(_ path: String) throws {
        let reader = try ActivationStoreReader(path: path)
        for site in reader.sites { _ = try reader.read(site: site.name) }
        for column in reader.metaColumns where column == "prompt" { _ = try reader.stringColumn(column) }
        for column in reader.metaColumns where column != "prompt" { _ = try reader.intColumn(column) }
    }
}
