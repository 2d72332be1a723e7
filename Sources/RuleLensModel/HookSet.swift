import RuleLensNumerics

/// Callbacks on hook sites for one or more forward passes (inference only: see `GPT.forward`).
///
/// Sites are chosen by exact name or glob pattern (`blocks.*.hook_mlp_out`, `blocks.1.attn.*`, `*`); call
/// `validate(for:)` (or `HookSites.resolve`) to turn a typo into an error before running. Callbacks run in the
/// order they were registered; an observer registered before an editor sees the values before the edit.
/// Only requested sites are materialised: a site nobody asked for costs nothing.
///
/// ```swift
/// let hooks = HookSet()
/// let cache = hooks.cache(["blocks.0.hook_resid_post", "blocks.0.attn.hook_pattern"])
/// try hooks.zero(["blocks.1.hook_attn_out"])                       // ablate layer 1's attention
/// hooks.edit(["blocks.0.mlp.hook_post"]) { _, values, shape in values[0] += 1 }
/// _ = model.forward(tokens: tokens, batch: 2, seqLen: 16, hooks: hooks)
/// let pattern = cache["blocks.0.attn.hook_pattern"]!              // (shape: [2, H, 16, 16], values: [Float])
/// ```
public final class HookSet {
    /// Reads a site's values (contiguous, full shape including batch).
    public typealias Observer = (_ name: String, _ values: UnsafePointer<Float>, _ shape: [Int]) -> Void
    /// May change a site's values in place; the forward pass continues with the edited values.
    public typealias Editor = (_ name: String, _ values: UnsafeMutablePointer<Float>, _ shape: [Int]) -> Void

    enum Callback {
        case observe(Observer)
        case edit(Editor)
    }

    private var registrations: [(patterns: [String], callback: Callback)] = []
    private var planCache: (sites: [String], count: Int, plan: HookPlan)?

    /// The absolute position of the first position the callbacks see: 0 in a full forward pass; in a cached decode step
    /// (`CachedDecoder.decode(…hooks:)`) the number of positions already cached, so an edit that depends on the
    /// position (a mean at position t, one ablated position) finds it. Set by the model while the callbacks run.
    public internal(set) var firstPosition = 0

    public init() {}

    /// Whether every site these callbacks touch (among a model's `sites`) is one of `allowed`: e.g. the sites a cached
    /// decode step fires.
    public func touchesOnly(_ allowed: Set<String>, sites: [String]) -> Bool {
        guard let plan = plan(sites: sites) else { return true }
        return plan.callbacks.keys.allSatisfy { allowed.contains($0) }
    }

    /// Whether no callback is registered.
    public var isEmpty: Bool { registrations.isEmpty }

    /// Every name or pattern registered so far.
    public var patterns: [String] { registrations.flatMap { $0.patterns } }

    /// Calls `body` with the values of each matching site during every forward pass.
    public func observe(_ names: [String], _ body: @escaping Observer) {
        registrations.append((names, .observe(body)))
    }

    /// Calls `body` on each matching site during every forward pass; it may change the values in place.
    public func edit(_ names: [String], _ body: @escaping Editor) {
        registrations.append((names, .edit(body)))
    }

    /// Throws a `RuleLensError` (closest match, valid names) if any registered name or pattern matches no site.
    public func validate(for config: GPTConfig) throws {
        _ = try HookSites.resolve(patterns, config: config)
    }

    /// `validate` against any model's site list (`LanguageModel.hookSites`).
    public func validate(sites: [String]) throws {
        _ = try HookSites.resolve(patterns, sites: sites)
    }

    /// The callbacks per concrete site of a model with these sites (nil when nothing matches), cached until the set
    /// or the site list changes.
    func plan(sites all: [String]) -> HookPlan? {
        if let cached = planCache, cached.count == registrations.count, cached.sites == all {
            return cached.plan.callbacks.isEmpty ? nil : cached.plan
        }
        var callbacks: [String: [Callback]] = [:]
        for registration in registrations {
            var matched = Set<String>()
            for pattern in registration.patterns { for site in all where HookSites.glob(pattern, matches: site) { matched.insert(site) } }
            for site in all where matched.contains(site) { callbacks[site, default: []].append(registration.callback) }
        }
        let plan = HookPlan(callbacks: callbacks)
        planCache = (all, registrations.count, plan)
        return callbacks.isEmpty ? nil : plan
    }
}

/// The resolved callbacks of a `HookSet` for one model configuration.
struct HookPlan {
    let callbacks: [String: [HookSet.Callback]]

    @inline(__always) func wants(_ name: String) -> Bool { callbacks[name] != nil }

    /// Runs the site's callbacks in registration order.
    func fire(_ name: String, _ values: UnsafeMutablePointer<Float>, _ shape: [Int]) {
        guard let list = callbacks[name] else { return }
        for callback in list {
            switch callback {
            case .observe(let body): body(name, UnsafePointer(values), shape)
            case .edit(let body): body(name, values, shape)
            }
        }
    }
}

/// Activations captured by `HookSet.cache`: site name → (shape, values), holding the latest forward pass.
public final class ActivationCache {
    private var entries: [String: (shape: [Int], values: [Float])] = [:]
    /// Site names in the order they were first stored.
    public private(set) var names: [String] = []

    public init() {}

    /// The stored shape (batch first) and values of `name`, or nil.
    public subscript(name: String) -> (shape: [Int], values: [Float])? { entries[name] }

    /// Stores (or replaces) one site's values.
    public func store(_ name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "ActivationCache: \(values.count) values for shape \(shape)")
        if entries[name] == nil { names.append(name) }
        entries[name] = (shape, values)
    }

    /// Number of stored sites.
    public var count: Int { entries.count }
}
