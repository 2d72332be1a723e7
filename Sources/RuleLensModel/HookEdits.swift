import RuleLensNumerics

/// Which part of a site an edit touches. `positions` select along the `pos` axis (`q_pos` for attention
/// scores/patterns; negative values count from the end, −1 = last); `heads` select along the `head` axis.
/// nil means all. A site without the selected axis is edited whole (an exact site name without it is an error
/// at registration).
public struct HookSelection: Sendable, Equatable {
    public var positions: [Int]?
    public var heads: [Int]?
    public init(positions: [Int]? = nil, heads: [Int]? = nil) { self.positions = positions; self.heads = heads }
    /// Every element of the site.
    public static let all = HookSelection()
}

/// The convenience hooks: caching and the standard interventions. Every edit works on spans of the site's
/// last axis (d_model, d_head, d_mlp, k_pos or d_vocab) chosen by a `HookSelection`.
extension HookSet {
    /// Caches each matching site's values on every forward pass (the latest pass wins).
    @discardableResult
    public func cache(_ names: [String]) -> ActivationCache {
        let cache = ActivationCache()
        observe(names) { name, values, shape in
            cache.store(name, shape: shape, values: Array(UnsafeBufferPointer(start: values, count: shape.reduce(1, *))))
        }
        return cache
    }

    /// Zero ablation: sets the selected values to 0.
    public func zero(_ names: [String], selection: HookSelection = .all) throws {
        try check(names, selection)
        edit(names) { name, values, shape in
            forEachSpan(name, shape, selection) { offset, length, _ in (values + offset).update(repeating: 0, count: length) }
        }
    }

    /// Adds `scale · vector` to every selected span; `vector` has the length of the site's last axis.
    public func add(_ names: [String], vector: [Float], scale: Float = 1, selection: HookSelection = .all) throws {
        try check(names, selection)
        edit(names) { name, values, shape in
            precondition(vector.count == shape.last!, "HookSet.add: vector has \(vector.count) values, \(name) needs \(shape.last!)")
            forEachSpan(name, shape, selection) { offset, length, _ in
                for i in 0..<length { values[offset + i] += scale * vector[i] }
            }
        }
    }

    /// Sets every selected span to `vector` (length of the site's last axis).
    public func replace(_ names: [String], with vector: [Float], selection: HookSelection = .all) throws {
        try check(names, selection)
        edit(names) { name, values, shape in
            precondition(vector.count == shape.last!, "HookSet.replace: vector has \(vector.count) values, \(name) needs \(shape.last!)")
            forEachSpan(name, shape, selection) { offset, length, _ in
                vector.withUnsafeBufferPointer { (values + offset).update(from: $0.baseAddress!, count: length) }
            }
        }
    }

    /// Mean ablation: replaces the selected values by their mean over the batch — of the current pass, or of
    /// `reference` (a cache of the same site from another run, any batch size, same sequence length).
    public func mean(_ names: [String], from reference: ActivationCache? = nil, selection: HookSelection = .all) throws {
        try check(names, selection, cache: reference)
        edit(names) { name, values, shape in
            let perExample = shape.dropFirst().reduce(1, *)
            var source: [Float] = []
            var sourceBatch = shape[0]
            if let reference {
                guard let entry = reference[name] else { preconditionFailure("HookSet.mean: the reference cache has no \(name)") }
                precondition(Array(entry.shape.dropFirst()) == Array(shape.dropFirst()),
                             "HookSet.mean: reference \(name) has shape \(entry.shape), this pass \(shape)")
                source = entry.values; sourceBatch = entry.shape[0]
            } else {
                source = Array(UnsafeBufferPointer(start: values, count: shape.reduce(1, *)))
            }
            var meanValues = [Double](repeating: 0, count: perExample)
            for b in 0..<sourceBatch { for i in 0..<perExample { meanValues[i] += Double(source[b * perExample + i]) } }
            let m = meanValues.map { Float($0 / Double(sourceBatch)) }
            forEachSpan(name, shape, selection) { offset, length, inExample in
                for i in 0..<length { values[offset + i] = m[inExample + i] }
            }
        }
    }

    /// Resample ablation: each example's selected values are replaced by those of another example, drawn with a
    /// seeded RNG — from the current batch (never itself, when the batch has more than one example) or from
    /// `reference`. Draws depend only on (seed, site name, how many passes this set has edited that site).
    public func resample(_ names: [String], seed: UInt64, from reference: ActivationCache? = nil, selection: HookSelection = .all) throws {
        try check(names, selection, cache: reference)
        let passes = PassCounter()
        edit(names) { name, values, shape in
            let B = shape[0], perExample = shape.dropFirst().reduce(1, *)
            let pass = passes.next(name)
            var rng = SeededRNG(seed: seed, stream: "resample:\(name):\(pass)")
            let source: [Float], sourceBatch: Int
            if let reference {
                guard let entry = reference[name] else { preconditionFailure("HookSet.resample: the reference cache has no \(name)") }
                precondition(Array(entry.shape.dropFirst()) == Array(shape.dropFirst()),
                             "HookSet.resample: reference \(name) has shape \(entry.shape), this pass \(shape)")
                source = entry.values; sourceBatch = entry.shape[0]
            } else {
                source = Array(UnsafeBufferPointer(start: values, count: shape.reduce(1, *))); sourceBatch = B
            }
            let donors: [Int] = (0..<B).map { b in
                if reference != nil { return rng.int(below: sourceBatch) }
                guard B > 1 else { return b }
                let j = rng.int(below: B - 1)
                return j >= b ? j + 1 : j
            }
            forEachSpan(name, shape, selection) { offset, length, inExample in
                let b = offset / perExample
                for i in 0..<length { values[offset + i] = source[donors[b] * perExample + inExample + i] }
            }
        }
    }

    /// Activation patching: copies the selected values from `cache` (another run of the same shape, or a cache
    /// with batch 1, which is broadcast to every example).
    public func patch(_ names: [String], from cache: ActivationCache, selection: HookSelection = .all) throws {
        try check(names, selection, cache: cache)
        edit(names) { name, values, shape in
            guard let entry = cache[name] else { preconditionFailure("HookSet.patch: the cache has no \(name)") }
            precondition(Array(entry.shape.dropFirst()) == Array(shape.dropFirst()) && (entry.shape[0] == shape[0] || entry.shape[0] == 1),
                         "HookSet.patch: cached \(name) has shape \(entry.shape), this pass \(shape)")
            let broadcast = entry.shape[0] == 1
            forEachSpan(name, shape, selection) { offset, length, inExample in
                let sourceOffset = broadcast ? inExample : offset
                for i in 0..<length { values[offset + i] = entry.values[sourceOffset + i] }
            }
        }
    }

    /// Registration-time checks that need no model: exact names must be known sites that have the selected
    /// axes, and must be in the cache when one is given.
    private func check(_ names: [String], _ selection: HookSelection, cache: ActivationCache? = nil) throws {
        for name in names where !name.contains("*") {
            let dims = HookSites.dims(of: name)
            guard !dims.isEmpty else {
                throw RuleLensError("unknown hook site '\(name)'", fix: "use a TransformerLens site name such as 'blocks.0.hook_resid_post' (see HookSites.names(for:))")
            }
            if selection.heads != nil && !dims.contains("head") {
                throw RuleLensError("hook site '\(name)' has no head axis (its axes are \(dims.joined(separator: ", ")))",
                                    fix: "select heads only on attn.hook_q/k/v/z/attn_scores/pattern")
            }
            if selection.positions != nil && !dims.contains("pos") && !dims.contains("q_pos") {
                throw RuleLensError("hook site '\(name)' has no position axis", fix: "drop the position selection")
            }
            if let cache, cache[name] == nil {
                throw RuleLensError("the activation cache has no '\(name)' (it holds: \(cache.names.joined(separator: ", ")))",
                                    fix: "cache that site in the source run first (HookSet.cache([\"\(name)\"]))")
            }
        }
    }
}

/// Counts passes per site for `resample`'s RNG streams.
private final class PassCounter {
    private var counts: [String: Int] = [:]
    func next(_ name: String) -> Int { defer { counts[name, default: 0] += 1 }; return counts[name, default: 0] }
}

/// Calls `body(offset, length, offsetWithinExample)` for each selected span of the site's last axis.
func forEachSpan(_ name: String, _ shape: [Int], _ selection: HookSelection, _ body: (Int, Int, Int) -> Void) {
    let dims = HookSites.dims(of: name)
    let rank = shape.count, length = shape[rank - 1]
    let perExample = shape.dropFirst().reduce(1, *)
    let posAxis = dims.firstIndex(where: { $0 == "pos" || $0 == "q_pos" })
    let headAxis = dims.firstIndex(of: "head")
    func normalised(_ list: [Int]?, _ size: Int) -> Set<Int>? {
        list.map { Set($0.map { $0 < 0 ? size + $0 : $0 }) }
    }
    let positions = posAxis.flatMap { normalised(selection.positions, shape[$0]) }
    let heads = headAxis.flatMap { normalised(selection.heads, shape[$0]) }
    // Strides of the outer axes (all but the last), row-major.
    var strides = [Int](repeating: 1, count: rank)
    for axis in stride(from: rank - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
    let outerCount = shape.dropLast().reduce(1, *)
    for outer in 0..<outerCount {
        let offset = outer * length
        if let positions, let axis = posAxis, !positions.contains((offset / strides[axis]) % shape[axis]) { continue }
        if let heads, let axis = headAxis, !heads.contains((offset / strides[axis]) % shape[axis]) { continue }
        body(offset, length, offset % perExample)
    }
}
